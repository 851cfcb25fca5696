from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Hand ingest what it must call as it stores calls (ingest never imports billing)."""
        from billing.attribution import attribution_rules
        from billing.pricing_at_ingest import price_for_ingest
        from ingest import hooks

        hooks.set_call_pricer(price_for_ingest)
        hooks.set_rule_reader(attribution_rules)
