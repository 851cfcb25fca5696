"""Weekly per-model and per-product latency histograms (billing.models.WeeklyModelLatency, WeeklyProductLatency),
filled from the daily ones."""

import django.db.models.deletion
from django.db import migrations, models


def weekly_from_daily(daily: str, weekly: str, dims: list[str]) -> str:
    """Every week of the daily latency rows merged (organization by organization), as the rollup job writes them."""
    keys = ", ".join(["organization_id", "week", *dims])
    picked = ", ".join(f"coalesce({d}, 0) AS {d}" if d.endswith("_id") else d for d in dims)
    written = ", ".join(f"nullif(g.{d}, 0)" if d.endswith("_id") else f"g.{d}" for d in dims)
    by = ", ".join(str(i) for i in range(1, len(dims) + 3))
    merged = {
        metric: f"SELECT {keys}, jsonb_object_agg(k, n) AS buckets FROM (SELECT {keys}, e.key AS k, "
                f"sum(e.value::bigint) AS n FROM h, jsonb_each_text(h.{metric}_buckets) e GROUP BY {by}, "
                f"{len(dims) + 3}) x GROUP BY {by}"
        for metric in ("latency", "ttft")
    }
    return (
        f"WITH h AS (SELECT organization_id, date_trunc('week', day)::date AS week, {picked}, calls, latency_buckets, "
        f"ttft_buckets FROM {daily}), g AS (SELECT {keys}, sum(calls) AS calls FROM h GROUP BY {by}), "
        f"lh AS ({merged['latency']}), th AS ({merged['ttft']}) "
        f"INSERT INTO {weekly} (organization_id, week, {', '.join(dims)}, calls, latency_buckets, ttft_buckets) "
        f"SELECT g.organization_id, g.week, {written}, g.calls, coalesce(lh.buckets, '{{}}'::jsonb), "
        f"coalesce(th.buckets, '{{}}'::jsonb) FROM g LEFT JOIN lh USING ({keys}) LEFT JOIN th USING ({keys})"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0022_weekly_end_user_spend'),
        ('observatory', '0004_weekly_digest'),
    ]

    operations = [
        migrations.CreateModel(
            name='WeeklyModelLatency',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('calls', models.BigIntegerField(default=0)),
                ('latency_buckets', models.JSONField(default=dict)),
                ('ttft_buckets', models.JSONField(default=dict)),
                ('provider', models.TextField(blank=True, default='')),
                ('model', models.TextField(blank=True, default='')),
                ('week', models.DateField(help_text='The Monday the week starts.')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('organization', 'week', 'provider', 'model'), name='weeklymodellatency_unique')],
            },
        ),
        migrations.CreateModel(
            name='WeeklyProductLatency',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('calls', models.BigIntegerField(default=0)),
                ('latency_buckets', models.JSONField(default=dict)),
                ('ttft_buckets', models.JSONField(default=dict)),
                ('week', models.DateField(help_text='The Monday the week starts.')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.organization')),
                ('product', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='observatory.product')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('organization', 'week', 'product'), name='weeklyproductlatency_unique', nulls_distinct=False)],
            },
        ),
        migrations.RunSQL(weekly_from_daily("billing_dailymodellatency", "billing_weeklymodellatency", ["provider", "model"]),
                          reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(weekly_from_daily("billing_dailyproductlatency", "billing_weeklyproductlatency", ["product_id"]),
                          reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL("ANALYZE billing_weeklymodellatency, billing_weeklyproductlatency",
                          reverse_sql=migrations.RunSQL.noop),
    ]
