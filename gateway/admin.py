"""Django admin for the gateway's allow-list and provider accounts; a provider key is typed in, stored encrypted,
and never shown again."""

from django import forms
from django.contrib import admin

from gateway import services
from gateway.models import ProviderAccount, UpstreamHost
from gateway.upstreams import host_allowed, normalize_host


class UpstreamHostForm(forms.ModelForm):
    class Meta:
        model = UpstreamHost
        fields = ["organization", "host"]

    def clean_host(self):
        try:
            return normalize_host(self.cleaned_data["host"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(UpstreamHost)
class UpstreamHostAdmin(admin.ModelAdmin):
    form = UpstreamHostForm
    list_display = ["host", "organization", "created_at"]
    list_filter = ["organization"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.upstream_cache.clear()


class ProviderAccountForm(forms.ModelForm):
    base_url = forms.URLField(label="Base URL", required=False, assume_scheme="https", max_length=500,
                              help_text="Empty: the provider's public API. Its host must be on the allow-list.")
    api_key = forms.CharField(label="API key", required=False, widget=forms.PasswordInput(render_value=False), strip=True,
                              help_text="Stored encrypted and never shown again. Leave empty to keep the stored key.")

    class Meta:
        model = ProviderAccount
        fields = ["organization", "provider", "base_url"]

    def clean(self):
        data = super().clean()
        base_url, organization = data.get("base_url"), data.get("organization")
        if base_url and organization is not None:
            hosts = frozenset(UpstreamHost.objects.filter(organization=organization).values_list("host", flat=True))
            if not host_allowed(base_url, hosts):
                self.add_error("base_url", "this host is not on the gateway's allow-list: add it under Upstream hosts first")
        return data


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["organization", "provider", "base_url", "key_hint", "updated_at"]
    readonly_fields = ["key_hint", "updated_at"]

    def save_model(self, request, obj, form, change):
        saved = services.set_provider_account(obj.organization, obj.provider, base_url=obj.base_url,
                                              api_key=form.cleaned_data.get("api_key") or None)
        obj.pk = saved.pk


from gateway import rules_admin  # noqa: E402,F401 (cache policies and routing rules)
