"""Weekly end-user spend (billing.models.WeeklyEndUserSpend), filled from the daily rows."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0021_session_rows_shared'),
        ('observatory', '0004_weekly_digest'),
    ]

    operations = [
        migrations.CreateModel(
            name='WeeklyEndUserSpend',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('week', models.DateField(help_text='The Monday the week starts.')),
                ('end_user', models.TextField()),
                ('calls', models.BigIntegerField(default=0)),
                ('errors', models.BigIntegerField(default=0)),
                ('input_tokens', models.BigIntegerField(default=0)),
                ('output_tokens', models.BigIntegerField(default=0)),
                ('cost_usd', models.DecimalField(blank=True, decimal_places=10, max_digits=24, null=True)),
                ('last_seen', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.team')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'week'], name='weeklyenduserspend_org_week')],
            },
        ),
        migrations.RunSQL(
            "INSERT INTO billing_weeklyenduserspend (organization_id, week, team_id, end_user, calls, errors, "
            "input_tokens, output_tokens, cost_usd, last_seen) "
            "SELECT organization_id, date_trunc('week', day)::date, team_id, end_user, sum(calls), sum(errors), "
            "sum(input_tokens), sum(output_tokens), sum(cost_usd), max(last_seen) FROM billing_dailyenduserspend "
            "WHERE end_user <> '' GROUP BY 1, 2, 3, 4",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL("ANALYZE billing_weeklyenduserspend", reverse_sql=migrations.RunSQL.noop),
    ]
