"""Django admin for the gateway's cache policies and routing rules (canaries are also started from Savings)."""

from django.contrib import admin

from gateway.rulebook import rulebooks
from gateway.rules import CachePolicy, RoutingRule


class ClearsRulebooks(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        rulebooks.clear()


@admin.register(CachePolicy)
class CachePolicyAdmin(ClearsRulebooks):
    list_display = ["organization", "team", "product", "feature", "ttl_seconds", "enabled"]
    list_filter = ["organization", "enabled"]
    fields = ["organization", "team", "product", "feature", "ttl_seconds", "enabled"]


@admin.register(RoutingRule)
class RoutingRuleAdmin(ClearsRulebooks):
    list_display = ["__str__", "organization", "team", "product", "feature", "share_percent", "status"]
    list_filter = ["organization", "status"]
    fields = ["organization", "name", "team", "product", "feature", "from_model", "to_model", "share_percent", "split",
              "fallback_model", "fallback_provider", "fallback_base_url", "status"]
