from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Hand ingest what it must call as it stores calls, and the gateway its hard budgets (neither imports
        billing)."""
        from billing.attribution import attribution_rules
        from billing.limits import book
        from billing.pricing.at_ingest import price_for_ingest
        from gateway import hooks as gateway_hooks
        from ingest import hooks

        hooks.set_call_pricer(price_for_ingest)
        hooks.set_rule_reader(attribution_rules)
        hooks.set_spend_listener(book.record_spend)  # hard-budget counters follow every stored call's cost
        gateway_hooks.set_limits(book)  # the gateway refuses calls under a spent hard budget

        # Every install runs migrate (observatory up, docker compose, manage.py), so the catalog is in force
        # after it; the seed adds nothing once the catalog is there (billing.services.seed_catalog).
        post_migrate.connect(seed_price_catalog, sender=self, dispatch_uid="billing-seed-price-catalog")


def seed_price_catalog(sender, using: str = "default", apps=None, **_kwargs) -> None:
    from billing.services import seed_catalog

    try:  # migrate passes its migration state; flush (tests, `manage.py flush`) passes none: the models as they are
        price_model = apps.get_model("billing", "Price") if apps is not None else None
    except LookupError:  # billing migrated back to zero
        return
    if price_model is None:
        seed_catalog(using=using)
    else:
        seed_catalog(price_model, using=using)
