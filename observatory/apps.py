from django.apps import AppConfig
from django.db.models.signals import post_save


class ObservatoryConfig(AppConfig):
    name = "observatory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from observatory.models import ApiKey, Organization
        from observatory.services import forget_cached_keys

        def forget(**_kwargs) -> None:
            forget_cached_keys()

        # A settings change (e.g. content capture off) applies at once in this process, within
        # KEY_CACHE_SECONDS in the others.
        post_save.connect(forget, sender=Organization, weak=False, dispatch_uid="forget-keys-org")
        post_save.connect(forget, sender=ApiKey, weak=False, dispatch_uid="forget-keys-apikey")
