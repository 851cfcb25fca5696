"""Forms for the budget and alert-rule pages, with the same checks as the REST API.

Each form takes the `organization` whose teams and products may be chosen (a team of another organization
is "not one of the available choices"); saving goes through `billing.services.save_alert_source`, which checks
the right to change it.
"""

from __future__ import annotations

import re
from zoneinfo import available_timezones

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator

from billing.alerts.budgets import setup_problems
from billing.alerts.webhook_guard import validate_webhook_url
from billing.models import AnomalyRule, Budget, GpuPool, LatencySlo
from observatory.models import Organization, Product, Team

TIME_ZONES = sorted(available_timezones())
CHANNEL_FIELDS = ["email_recipients", "slack_webhook_url", "webhook_url", "webhook_secret", "is_active"]
SEPARATORS = re.compile(r"[,;\s]+")


class PercentListField(forms.CharField):
    """Thresholds typed as "50, 80, 100" (a % sign is allowed), cleaned to [50, 80, 100]."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value).replace("%", " ")
        try:
            return [int(part) for part in SEPARATORS.split(text.strip()) if part]
        except ValueError:
            raise ValidationError("thresholds are whole percentages separated by commas, e.g. 50, 80, 100.",
                                  code="bad_thresholds") from None


class EmailListField(forms.CharField):
    """Addresses separated by commas, semicolons or new lines; each one is validated by the model."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        return [part for part in SEPARATORS.split(super().to_python(value).strip()) if part]


class AlertSourceForm(forms.ModelForm):
    """What budgets and rules share: a name, an owner, channels, and a scope inside one organization."""

    email_recipients = EmailListField(required=False)
    slack_webhook_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Slack webhook URL",
                                       help_text="Slack incoming webhook. Empty: the server's SLACK_WEBHOOK_URL, if set.")
    webhook_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Webhook URL")

    def __init__(self, *args, organization: Organization, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.instance.organization = organization
        if self.instance.pk is None and owner is not None:
            self.instance.owner = owner
        if "team" in self.fields:
            self.fields["team"].queryset = Team.objects.filter(organization=organization)
        if "product" in self.fields:
            self.fields["product"].queryset = Product.objects.filter(organization=organization)
        if "webhook_secret" in self.fields:
            self.fields["webhook_secret"].widget = forms.PasswordInput(render_value=True)

    # after the URL field's own checks: only a well-formed URL is checked against internal addresses
    def clean_slack_webhook_url(self) -> str:
        validate_webhook_url(self.cleaned_data["slack_webhook_url"])
        return self.cleaned_data["slack_webhook_url"]

    def clean_webhook_url(self) -> str:
        validate_webhook_url(self.cleaned_data["webhook_url"])
        return self.cleaned_data["webhook_url"]

    def clean(self):
        data = super().clean()
        problems = setup_problems(self.organization, data.get("team"), data.get("product"), data.get("webhook_url", ""),
                                  data.get("webhook_secret", ""))
        for field, message in problems.items():
            self.add_error(field, message)
        return data


class BudgetForm(AlertSourceForm):
    thresholds = PercentListField(required=False, initial="50, 80, 100",
                                  help_text="Percentages of the amount, e.g. 50, 80, 100 (up to 1000).")

    class Meta:
        model = Budget
        fields = ["name", "team", "product", "period", "time_zone", "amount_usd", "thresholds", "forecast_alert", "hard_limit",
                  *CHANNEL_FIELDS]
        labels = {"amount_usd": "Amount (USD)"}


class AnomalyRuleForm(AlertSourceForm):
    class Meta:
        model = AnomalyRule
        fields = ["name", "dimension", "team", "product", "z_threshold", "min_excess_usd", "baseline_weeks", *CHANNEL_FIELDS]


class LatencySloForm(AlertSourceForm):
    class Meta:
        model = LatencySlo
        fields = ["name", "product", "model", "quantile", "limit_ms", "window_hours", "min_calls", *CHANNEL_FIELDS]


class ServedModelsField(forms.CharField):
    """Model names typed as "llama-3.1-70b, qwen2.5-72b", cleaned to a list."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [part for part in (item.strip() for item in re.split(r"[,\n]+", text)) if part][:50]


class GpuPoolForm(forms.ModelForm):
    """A self-hosted GPU pool: what it costs per GPU-hour, who owns it, what it serves."""

    served_models = ServedModelsField(required=False, max_length=4000,
                                      help_text="Model names its calls report, separated by commas.")

    class Meta:
        model = GpuPool
        fields = ["name", "gpu_model", "gpu_count", "hourly_usd_per_gpu", "owner_team", "served_models", "gpu_memory_gb",
                  "model_params_billion", "weight_precision"]
        labels = {"gpu_model": "GPU model", "hourly_usd_per_gpu": "$ per GPU-hour", "gpu_memory_gb": "GPU memory (GB)",
                  "model_params_billion": "Model size (billion parameters)", "gpu_count": "GPUs"}

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.instance.organization = organization
        self.fields["owner_team"].queryset = Team.objects.filter(organization=organization).order_by("name")
        self.fields["gpu_count"].validators.append(MinValueValidator(1))
        self.fields["gpu_count"].widget.attrs["min"] = 1

    def clean_name(self):
        name = self.cleaned_data["name"]
        clash = GpuPool.objects.filter(organization=self.organization, name=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError("a pool with this name already exists.")
        return name

    def clean_hourly_usd_per_gpu(self):
        value = self.cleaned_data["hourly_usd_per_gpu"]
        if value is not None and value < 0:
            raise ValidationError("an hourly rate cannot be negative.")
        return value
