"""Rollups group calls by their canonical model from now on: roll every hour up again (the beat job does it)."""

from datetime import UTC, datetime

from django.db import migrations


def reroll_everything(apps, schema_editor):
    apps.get_model("billing", "RollupState").objects.update(watermark=datetime(2000, 1, 1, tzinfo=UTC))


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0012_implausible_calls"),
        ("ingest", "0007_llmcall_model_response_id"),
    ]

    operations = [
        migrations.RunPython(reroll_everything, migrations.RunPython.noop, elidable=True),
    ]
