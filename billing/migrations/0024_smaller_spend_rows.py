"""Per-team daily spend (billing.models.DailyTeamSpend) and weekly spend by team and model (WeeklyTeamModelSpend),
filled from DailyTeamModelSpend."""

import django.db.models.deletion
from django.db import migrations, models

COLUMNS = ("calls, errors, streaming_calls, unpriced_calls, implausible_calls, usage_missing_calls, input_tokens, "
           "cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_usd, error_cost_usd, "
           "cache_read_savings_usd, app_cache_hits, cost_avoided_usd, latency_sum_ms, ttft_calls, ttft_sum_ms")
SUMS = ", ".join(f"sum({column})" for column in COLUMNS.split(", "))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0023_weekly_latency'),
        ('observatory', '0004_weekly_digest'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyTeamSpend',
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
                ('ttft_calls', models.BigIntegerField(default=0)),
                ('ttft_sum_ms', models.FloatField(default=0)),
                ('day', models.DateField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization')),
                ('product', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.product')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.team')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'day'], name='dailyteamtotal_org_day')],
            },
        ),
        migrations.CreateModel(
            name='WeeklyTeamModelSpend',
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
                ('ttft_calls', models.BigIntegerField(default=0)),
                ('ttft_sum_ms', models.FloatField(default=0)),
                ('week', models.DateField(help_text='The Monday the week starts.')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization')),
                ('product', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.product')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='observatory.team')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'week'], name='weeklyteamspend_org_week')],
            },
        ),
        migrations.RunSQL(
            f"INSERT INTO billing_dailyteamspend (organization_id, day, team_id, provider, model, environment, feature, "
            f"{COLUMNS}) SELECT organization_id, day, team_id, '', '', '', '', {SUMS} FROM billing_dailyteammodelspend "
            f"GROUP BY 1, 2, 3",
            reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(
            f"INSERT INTO billing_weeklyteammodelspend (organization_id, week, team_id, product_id, provider, model, "
            f"environment, feature, {COLUMNS}) SELECT organization_id, date_trunc('week', day)::date, team_id, "
            f"product_id, provider, model, environment, feature, {SUMS} FROM billing_dailyteammodelspend "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
            reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL("ANALYZE billing_dailyteamspend, billing_weeklyteammodelspend",
                          reverse_sql=migrations.RunSQL.noop),
    ]
