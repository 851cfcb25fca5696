"""Django admin for call records (read-only: calls are written by ingest only)."""

from django.contrib import admin

from ingest.models import LLMCall


@admin.register(LLMCall)
class LLMCallAdmin(admin.ModelAdmin):
    list_display = ("start_time", "provider", "response_model", "input_tokens", "output_tokens", "cost_usd", "cost_status",
                    "status", "team", "product", "source")
    list_filter = ("provider", "status", "cost_status", "source")
    search_fields = ("trace_id", "span_id", "request_model", "response_model")
    date_hierarchy = "start_time"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
