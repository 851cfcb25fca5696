"""DailySessionSpend.shared: whether a session has other rows (billing.day_rollups keeps it current)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0020_dailyteammodelspend'),
        ('observatory', '0004_weekly_digest'),
    ]

    operations = [
        migrations.AddField(
            model_name='dailysessionspend',
            name='shared',
            field=models.BooleanField(default=True, help_text='The session has other rows (another day or team), so its total is a sum; false: this row is all of it. Almost every session lives within one day, so the users page sums only the shared ones and reads the top of the others straight off an index.'),
        ),
        migrations.AddIndex(
            model_name='dailysessionspend',
            index=models.Index(fields=['organization', 'session'], name='dailysessionspend_org_session'),
        ),
        migrations.AddIndex(
            model_name='dailysessionspend',
            index=models.Index(models.F('organization'), models.OrderBy(models.F('cost_usd'), descending=True, nulls_last=True), condition=models.Q(('shared', False), models.Q(('session', ''), _negated=True)), name='dailysessionspend_whole_top'),
        ),
        migrations.RunSQL(
            "UPDATE billing_dailysessionspend s SET shared = EXISTS (SELECT 1 FROM billing_dailysessionspend o "
            "WHERE o.organization_id = s.organization_id AND o.session = s.session AND o.id <> s.id)",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
