"""REST API for budgets, anomaly rules and latency SLOs (read by whoever may see them, changed through
`billing.services` by admins and their teams' managers) and the alerts they raised."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from billing import services
from billing.alerts import webhook_guard
from billing.alerts.budgets import budget_status, budget_url, setup_problems
from billing.api.permissions import ApiKeysReadOnly, key_of
from billing.models import Alert, AnomalyRule, Budget, Delivery, LatencySlo, validate_thresholds
from observatory.access import Viewer, readable, viewer_in, visible_organizations
from observatory.models import ApiKey, Organization, Product, Team

RECENT_ALERTS = 100


class AlertSourceSerializer(serializers.ModelSerializer):
    """Fields every budget and rule has; team and product are slugs inside the organization."""

    scope_models = {"team": Team, "product": Product}

    organization = serializers.SlugRelatedField(slug_field="slug", queryset=Organization.objects.all(), required=False)
    team = serializers.SlugField(required=False, allow_null=True, allow_blank=True)
    product = serializers.SlugField(required=False, allow_null=True, allow_blank=True)
    email_recipients = serializers.ListField(child=serializers.EmailField(), required=False, max_length=50)
    webhook_secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=200)
    has_webhook_secret = serializers.SerializerMethodField()
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    evaluation_error = serializers.CharField(read_only=True)
    evaluation_failing_since = serializers.DateTimeField(read_only=True)

    common_fields = ["id", "organization", "name", "owner", "email_recipients", "slack_webhook_url", "webhook_url",
                     "webhook_secret", "has_webhook_secret", "is_active", "created_at", "evaluation_error",
                     "evaluation_failing_since"]

    def get_has_webhook_secret(self, obj) -> bool:
        return bool(obj.webhook_secret)

    # after the URL field's own checks (a Django ValidationError becomes this field's 400 message)
    def validate_slack_webhook_url(self, value: str) -> str:
        webhook_guard.validate_webhook_url(value)
        return value

    def validate_webhook_url(self, value: str) -> str:
        webhook_guard.validate_webhook_url(value)
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in self.scope_models:
            if name in data:
                related = getattr(instance, name)
                data[name] = related.slug if related else None
        return data

    def _organization(self, data: dict) -> Organization:
        request = self.context["request"]
        if self.instance is not None:
            if data.get("organization", self.instance.organization) != self.instance.organization:
                raise serializers.ValidationError({"organization": "cannot move to another organization."})
            return self.instance.organization
        visible = visible_organizations(request.user, request.auth if isinstance(request.auth, ApiKey) else None)
        if "organization" in data:
            if not visible.filter(pk=data["organization"].pk).exists():
                raise serializers.ValidationError({"organization": "unknown organization."})
            return data["organization"]
        if visible.count() != 1:
            raise serializers.ValidationError({"organization": "give the organization's slug: you belong to several."})
        return visible.get()

    def validate(self, data: dict) -> dict:
        organization = self._organization(data)
        data["organization"] = organization
        errors = {}
        for name, model in self.scope_models.items():
            if name not in self.fields or name not in data:
                continue
            slug = data[name]
            data[name] = model.objects.filter(organization=organization, slug=slug).first() if slug else None
            if slug and data[name] is None:
                errors[name] = f"unknown {name} “{slug}” in {organization.slug}."

        def current(name: str, default=None):
            return data[name] if name in data else getattr(self.instance, name, default)

        if not errors:
            errors = setup_problems(organization, current("team"), current("product"), current("webhook_url", ""),
                                    current("webhook_secret", ""))
        if errors:
            raise serializers.ValidationError(errors)
        return data


class BudgetSerializer(AlertSourceSerializer):
    thresholds = serializers.ListField(child=serializers.IntegerField(), required=False, validators=[validate_thresholds])
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Budget
        fields = [*AlertSourceSerializer.common_fields, "team", "product", "period", "time_zone", "amount_usd", "thresholds",
                  "forecast_alert", "hard_limit", "page_url"]

    def get_page_url(self, obj) -> str:
        return budget_url(obj)


class AnomalyRuleSerializer(AlertSourceSerializer):
    class Meta:
        model = AnomalyRule
        fields = [*AlertSourceSerializer.common_fields, "dimension", "team", "product", "z_threshold", "min_excess_usd",
                  "baseline_weeks"]


class LatencySloSerializer(AlertSourceSerializer):
    scope_models = {"product": Product}

    class Meta:
        model = LatencySlo
        fields = [*AlertSourceSerializer.common_fields, "product", "model", "quantile", "limit_ms", "window_hours",
                  "min_calls"]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["channel", "target", "status", "attempts", "last_error", "next_attempt_at", "sent_at"]


class AlertSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = ["id", "kind", "budget", "anomaly_rule", "latency_slo", "period_start", "period_end", "threshold_percent",
                  "subject", "subject_label", "spend_usd", "budget_usd", "forecast_usd", "title", "message", "details",
                  "suppressed", "created_at", "deliveries"]


TEST_RESULT = inline_serializer("TestAlertResult", {"results": serializers.DictField(child=serializers.CharField())})


class AlertSourceViewSet(viewsets.ModelViewSet):
    """CRUD for one kind of alert source, plus its recent alerts and a test alert."""

    permission_classes = [permissions.IsAuthenticated, ApiKeysReadOnly]
    lookup_value_converter = "int"
    model: type
    related = ("organization", "owner", "product")

    def get_queryset(self):
        queryset = self.model.objects.select_related(*self.related).order_by("organization_id", "name", "id")
        return readable(queryset, self.request.user, key_of(self.request))

    def viewer_of(self, organization: Organization) -> Viewer:
        viewer = viewer_in(self.request.user, organization, key_of(self.request))
        if viewer is None:
            raise PermissionDenied("unknown organization.")
        return viewer

    def perform_create(self, serializer) -> None:
        data = serializer.validated_data
        source = self.model(**data, owner=self.request.user)
        serializer.instance = services.save_alert_source(self.viewer_of(data["organization"]), source)

    def perform_update(self, serializer) -> None:
        instance = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(instance, name, value)
        services.save_alert_source(self.viewer_of(instance.organization), instance)

    def perform_destroy(self, instance) -> None:
        services.delete_alert_source(self.viewer_of(instance.organization), instance)

    @extend_schema(request=None, responses=TEST_RESULT)
    @action(detail=True, methods=["post"], url_path="test-alert")
    def test_alert(self, request, pk=None):
        """Send a clearly marked test message to each channel; no alert is recorded."""
        instance = self.get_object()
        try:
            return Response({"results": services.send_test_alert(self.viewer_of(instance.organization), instance)})
        except services.NoChannel as error:
            return Response({"detail": str(error)}, status=400)

    @extend_schema(responses=AlertSerializer(many=True))
    @action(detail=True, methods=["get"])
    def alerts(self, request, pk=None):
        """The most recent alerts, each with its deliveries (status, attempts, last error)."""
        instance = self.get_object()
        alerts = instance.alerts.prefetch_related("deliveries")[:RECENT_ALERTS]
        return Response(AlertSerializer(alerts, many=True).data)


class BudgetViewSet(AlertSourceViewSet):
    model = Budget
    serializer_class = BudgetSerializer
    related = ("organization", "owner", "team", "product")

    @extend_schema(responses=inline_serializer("BudgetStatus", {
        "period_start": serializers.DateTimeField(), "period_end": serializers.DateTimeField(),
        "spend_usd": serializers.DecimalField(max_digits=20, decimal_places=6),
        "amount_usd": serializers.DecimalField(max_digits=14, decimal_places=2),
        "percent": serializers.DecimalField(max_digits=10, decimal_places=1),
        "forecast_usd": serializers.DecimalField(max_digits=20, decimal_places=6),
        "forecast_method": serializers.CharField(),
    }))
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """This period's spend to date and the forecast for its end."""
        status = budget_status(self.get_object())
        return Response({
            "period_start": status.period_start, "period_end": status.period_end,
            "spend_usd": f"{status.spend_usd:.6f}", "amount_usd": str(status.amount_usd), "percent": f"{status.percent:.1f}",
            "forecast_usd": f"{status.forecast.amount_usd:.2f}", "forecast_method": status.forecast.method,
        })


class AnomalyRuleViewSet(AlertSourceViewSet):
    model = AnomalyRule
    serializer_class = AnomalyRuleSerializer
    related = ("organization", "owner", "team", "product")


class LatencySloViewSet(AlertSourceViewSet):
    model = LatencySlo
    serializer_class = LatencySloSerializer


class AlertCursor(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = RECENT_ALERTS


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts of every budget and rule the requester may read, newest first, with their deliveries."""

    serializer_class = AlertSerializer
    pagination_class = AlertCursor
    lookup_value_converter = "int"

    def get_queryset(self):
        return readable(Alert.objects.all(), self.request.user, key_of(self.request)).prefetch_related("deliveries")
