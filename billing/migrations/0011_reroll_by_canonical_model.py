"""Rollups group calls by their canonical model from now on: roll every hour up again (the beat job does it)."""

from datetime import UTC, datetime

from django.db import migrations


def reroll_everything(apps, schema_editor):
    apps.get_model("billing", "RollupState").objects.filter(name="hourly").update(watermark=datetime(2000, 1, 1, tzinfo=UTC))


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0010_product_latency"),
        ("ingest", "0006_llmcall_model_response_id"),
    ]

    operations = [
        migrations.RunPython(reroll_everything, migrations.RunPython.noop, elidable=True),
    ]
