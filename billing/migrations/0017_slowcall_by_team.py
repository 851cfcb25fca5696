"""One team's slowest calls without walking every team's."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0016_daily_team_model_rollup'),
        ('observatory', '0002_api_key_ingest_rate_limit'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='hourlyslowcall',
            index=models.Index(fields=['organization', 'team', '-duration_ms'], name='hourlyslowcall_team_duration'),
        ),
    ]
