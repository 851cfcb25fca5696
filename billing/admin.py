"""Django admin for prices, negotiated overrides, attribution rules, GPU pools, budgets, alert rules, alerts and
recommendations."""

from django.contrib import admin

from billing.models import (
    Alert,
    AnomalyRule,
    AttributionRule,
    Budget,
    Delivery,
    GpuPool,
    LatencySlo,
    Price,
    PriceOverride,
    Recommendation,
)


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("key", "provider", "mode", "input", "output", "cached_input_read", "cache_write", "effective_from",
                    "effective_to", "source")
    list_filter = ("provider", "source", "mode")
    search_fields = ("key", "model")


@admin.register(PriceOverride)
class PriceOverrideAdmin(admin.ModelAdmin):
    list_display = ("organization", "provider", "model_pattern", "discount_percent", "input", "output", "effective_from",
                    "effective_to")
    list_filter = ("organization",)


@admin.register(AttributionRule)
class AttributionRuleAdmin(admin.ModelAdmin):
    list_display = ("organization", "position", "field", "attribute_key", "pattern", "team", "product", "feature")
    list_filter = ("organization", "field")
    ordering = ("organization", "position", "id")


@admin.register(GpuPool)
class GpuPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "gpu_model", "gpu_count", "hourly_usd_per_gpu", "owner_team", "gpu_memory_gb",
                    "model_params_billion", "weight_precision")
    list_filter = ("organization",)
    search_fields = ("name", "gpu_model")
    fieldsets = (
        (None, {"fields": ("organization", "name", "gpu_model", "gpu_count", "hourly_usd_per_gpu", "owner_team",
                           "served_models")}),
        ("Serving facts (for the quantization and batching recommendations)",
         {"fields": ("gpu_memory_gb", "model_params_billion", "weight_precision")}),
    )


@admin.register(Recommendation)
class RecommendationAdmin(admin.ModelAdmin):
    list_display = ("title", "organization", "kind", "team", "monthly_savings_usd", "confidence", "status", "updated_at")
    list_filter = ("organization", "kind", "status", "confidence")
    search_fields = ("title", "feature", "model")
    readonly_fields = ("organization", "kind", "team", "product", "feature", "model", "title", "evidence", "formula",
                       "monthly_savings_usd", "confidence", "evidence_value", "fingerprint", "created_at", "updated_at")


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "team", "product", "period", "amount_usd", "time_zone", "is_active")
    list_filter = ("organization", "period", "is_active")
    search_fields = ("name",)


@admin.register(AnomalyRule)
class AnomalyRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "dimension", "team", "product", "z_threshold", "min_excess_usd", "is_active")
    list_filter = ("organization", "dimension", "is_active")


@admin.register(LatencySlo)
class LatencySloAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "product", "model", "quantile", "limit_ms", "window_hours", "is_active")
    list_filter = ("organization", "is_active")


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    readonly_fields = ("channel", "target", "status", "attempts", "last_error", "next_attempt_at", "sent_at", "created_at")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alerts are history: readable here, never edited."""

    list_display = ("title", "kind", "period_start", "suppressed", "created_at")
    list_filter = ("kind", "organization")
    inlines = [DeliveryInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False
