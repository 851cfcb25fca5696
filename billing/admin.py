"""Django admin for prices and negotiated overrides."""

from django.contrib import admin

from billing.models import Price, PriceOverride


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
