"""A context span's team and product, so its trace context is read with the same scope as its calls.

Plain nullable columns on the partitioned table (no index: spans are read by trace id). Spans stored before
have neither and are shown to organization-wide viewers only.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("ingest", "0008_usage_missing"),
        ("observatory", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql="ALTER TABLE ingest_tracespan ADD COLUMN team_id bigint NULL, ADD COLUMN product_id bigint NULL;",
            reverse_sql="ALTER TABLE ingest_tracespan DROP COLUMN team_id, DROP COLUMN product_id;",
            state_operations=[
                migrations.AddField(
                    model_name="tracespan",
                    name="team",
                    field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                            to="observatory.team"),
                ),
                migrations.AddField(
                    model_name="tracespan",
                    name="product",
                    field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                            to="observatory.product"),
                ),
            ],
        ),
    ]
