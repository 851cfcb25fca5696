from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IngestConfig(AppConfig):
    name = "ingest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(create_call_partitions, sender=self, dispatch_uid="ingest-create-call-partitions")


def create_call_partitions(sender, apps=None, **_kwargs) -> None:
    """After migrate, the daily call partitions around today exist, as `observatory up` and the hourly beat job keep
    them: on any install the first calls land in their own day's partition, not in the DEFAULT one."""
    from django.conf import settings

    from ingest.partitions import ensure_partitions

    try:
        apps.get_model("ingest", "LLMCall")
    except (AttributeError, LookupError):  # no migration state given, or ingest migrated back to zero
        return
    ensure_partitions(days_ahead=settings.PARTITION_DAYS_AHEAD)
