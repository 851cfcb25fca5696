"""Daily spend per end user and per session, failed calls per error type: roll every hour up again to fill them
(the beat job does it)."""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models


def reroll_everything(apps, schema_editor):
    apps.get_model("billing", "RollupState").objects.update(watermark=datetime(2000, 1, 1, tzinfo=UTC))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0014_usage_missing'),
        ('observatory', '0002_api_key_ingest_rate_limit'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyEndUserSpend',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('calls', models.BigIntegerField(default=0)),
                ('errors', models.BigIntegerField(default=0)),
                ('input_tokens', models.BigIntegerField(default=0)),
                ('output_tokens', models.BigIntegerField(default=0)),
                ('cost_usd', models.DecimalField(blank=True, decimal_places=10, help_text='Empty when none of the calls has a cost, as the sum of their costs is.', max_digits=24, null=True)),
                ('last_seen', models.DateTimeField()),
                ('end_user', models.TextField(blank=True, default='')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.team')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'day'], name='dailyenduserspend_org_day'), models.Index(fields=['organization', 'team', 'day'], name='dailyenduserspend_org_team_day'), models.Index(condition=models.Q(('end_user', '')), fields=['organization', 'team', 'day'], name='dailyenduserspend_unnamed')],
            },
        ),
        migrations.CreateModel(
            name='DailyErrorType',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('error_type', models.TextField(blank=True, default='')),
                ('http_status', models.SmallIntegerField(blank=True, null=True)),
                ('calls', models.BigIntegerField(default=0)),
                ('cost_usd', models.DecimalField(blank=True, decimal_places=10, max_digits=24, null=True)),
                ('last_seen', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.team')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'day'], name='dailyerrortype_org_day')],
            },
        ),
        migrations.CreateModel(
            name='DailySessionSpend',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('calls', models.BigIntegerField(default=0)),
                ('errors', models.BigIntegerField(default=0)),
                ('input_tokens', models.BigIntegerField(default=0)),
                ('output_tokens', models.BigIntegerField(default=0)),
                ('cost_usd', models.DecimalField(blank=True, decimal_places=10, help_text='Empty when none of the calls has a cost, as the sum of their costs is.', max_digits=24, null=True)),
                ('last_seen', models.DateTimeField()),
                ('session', models.TextField(blank=True, default='')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.team')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'day'], name='dailysessionspend_org_day'), models.Index(fields=['organization', 'team', 'day'], name='dailysessionspend_org_team_day'), models.Index(condition=models.Q(('session', '')), fields=['organization', 'team', 'day'], name='dailysessionspend_unnamed')],
            },
        ),
        migrations.RunPython(reroll_everything, migrations.RunPython.noop, elidable=True),
    ]
