"""Recommendations keep the days their monthly figure is scaled by (data_start, data_end).

Rows computed before were scaled × 30 / the window's days; they get their window as those days and the same
month of 30.44 days as everything else, so their stored fields agree until the next run replaces them with the
days that really had data."""

import re
from datetime import timedelta
from decimal import Decimal

from django.db import migrations, models

DAYS_PER_MONTH = Decimal("30.44")  # billing.monthly's, as of this migration


def span_the_window(apps, schema_editor):
    Recommendation = apps.get_model("billing", "Recommendation")
    for rec in Recommendation.objects.filter(data_start__isnull=True).iterator():
        days = int((rec.evidence or {}).get("window_days") or 30)
        Recommendation.objects.filter(pk=rec.pk).update(
            data_start=rec.updated_at - timedelta(days=days), data_end=rec.updated_at,
            monthly_savings_usd=(rec.evidence_value * DAYS_PER_MONTH / days).quantize(Decimal("0.000001")),
            formula=re.sub(r" × 30 / \d+ days$", f" × {DAYS_PER_MONTH} / {days} days", rec.formula))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0017_slowcall_by_team'),
    ]

    operations = [
        migrations.AddField(
            model_name='recommendation',
            name='data_end',
            field=models.DateTimeField(blank=True, help_text='End of those days: the end of the window.', null=True),
        ),
        migrations.AddField(
            model_name='recommendation',
            name='data_start',
            field=models.DateTimeField(blank=True, help_text="Start of the days with data the saving was found in: the hour of the window's first call (GPU pool kinds: the pool's first costed hour). monthly_savings_usd = evidence_value × 30.44 / days.", null=True),
        ),
        migrations.AlterField(
            model_name='recommendation',
            name='evidence_value',
            field=models.DecimalField(decimal_places=10, default=0, help_text='The saving found in the days with data (data_start to data_end), before scaling to a month.', max_digits=24),
        ),
        migrations.RunPython(span_the_window, migrations.RunPython.noop),
    ]
