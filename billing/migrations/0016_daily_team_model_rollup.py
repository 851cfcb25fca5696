"""Daily rollups per team, product, provider and model (DailyRollup without environment and feature), and DailyRollup
by team: roll every hour up again to fill the new table (the beat job does it)."""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models


def reroll_everything(apps, schema_editor):
    apps.get_model("billing", "RollupState").objects.update(watermark=datetime(2000, 1, 1, tzinfo=UTC))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0015_caller_spend_error_types'),
        ('observatory', '0002_api_key_ingest_rate_limit'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyTeamModelRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('provider', models.TextField(blank=True, default='')),
                ('model', models.TextField(blank=True, default='')),
                ('environment', models.TextField(blank=True, default='')),
                ('feature', models.TextField(blank=True, default='')),
                ('calls', models.BigIntegerField(default=0)),
                ('errors', models.BigIntegerField(default=0)),
                ('streaming_calls', models.BigIntegerField(default=0)),
                ('unpriced_calls', models.BigIntegerField(default=0, help_text='Calls of a model with no price (unknown_model).')),
                ('implausible_calls', models.BigIntegerField(default=0, help_text='Calls with values that cannot be real, not billed.')),
                ('usage_missing_calls', models.BigIntegerField(default=0, help_text='Successful calls that reported no tokens.')),
                ('input_tokens', models.BigIntegerField(default=0)),
                ('cached_input_tokens', models.BigIntegerField(default=0)),
                ('cache_write_tokens', models.BigIntegerField(default=0)),
                ('output_tokens', models.BigIntegerField(default=0)),
                ('reasoning_tokens', models.BigIntegerField(default=0)),
                ('cost_usd', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                ('error_cost_usd', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                ('cache_read_savings_usd', models.DecimalField(decimal_places=10, default=0, help_text='What cached input would have cost at the input price, minus what it cost.', max_digits=24)),
                ('app_cache_hits', models.BigIntegerField(default=0)),
                ('cost_avoided_usd', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                ('latency_sum_ms', models.FloatField(default=0)),
                ('latency_buckets', models.JSONField(default=dict, help_text='Log bucket index (ratio 1.05) → calls.')),
                ('ttft_calls', models.BigIntegerField(default=0)),
                ('ttft_sum_ms', models.FloatField(default=0)),
                ('ttft_buckets', models.JSONField(default=dict)),
                ('day', models.DateField()),
            ],
        ),
        migrations.AddIndex(
            model_name='dailyrollup',
            index=models.Index(fields=['organization', 'team', 'day'], name='dailyrollup_org_team_day'),
        ),
        migrations.AddField(
            model_name='dailyteammodelrollup',
            name='organization',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization'),
        ),
        migrations.AddField(
            model_name='dailyteammodelrollup',
            name='product',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.product'),
        ),
        migrations.AddField(
            model_name='dailyteammodelrollup',
            name='team',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.team'),
        ),
        migrations.AddIndex(
            model_name='dailyteammodelrollup',
            index=models.Index(fields=['organization', 'day'], name='dailyteammodel_org_day'),
        ),
        migrations.AddIndex(
            model_name='dailyteammodelrollup',
            index=models.Index(fields=['organization', 'team', 'day'], name='dailyteammodel_org_team_day'),
        ),
        migrations.RunPython(reroll_everything, migrations.RunPython.noop, elidable=True),
    ]
