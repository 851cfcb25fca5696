"""Django admin for tenancy; API keys are created through the admin action that shows the key once."""

from django.contrib import admin, messages

from observatory.models import ApiKey, Membership, Organization, Product, Team
from observatory.services import create_api_key, revoke_api_key


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "capture_content", "created_at")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "organization")
    list_filter = ("organization",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "team", "organization")
    list_filter = ("organization",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "team", "role")
    list_filter = ("organization", "role")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "organization", "default_team", "default_product", "last_used_at", "revoked_at")
    list_filter = ("organization",)
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at", "revoked_at")
    fields = ("organization", "name", "default_team", "default_product", *readonly_fields)
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        new = create_api_key(
            obj.organization, obj.name, team=obj.default_team, product=obj.default_product, created_by=request.user
        )
        obj.pk = new.api_key.pk
        obj.prefix, obj.key_hash, obj.created_at = new.api_key.prefix, new.api_key.key_hash, new.api_key.created_at
        messages.warning(request, f"New API key (shown once, copy it now): {new.plaintext}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            revoke_api_key(api_key)
