"""REST API for budgets, anomaly rules, latency SLOs and the alerts they raised.

Everyone reads what their memberships (or their API key's organization) let them see; admins change
everything in their organization, managers the budgets and rules of their teams, viewers and API keys nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from decimal import Decimal

from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, permissions, renderers, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import exports, services, webhook_guard
from billing.budgets import budget_status, budget_url, setup_problems
from billing.models import Alert, AnomalyRule, Budget, Delivery, LatencySlo, Recommendation, validate_thresholds
from billing.queries import GROUPABLE, regroup, spend, timeseries
from observatory.access import Scope, Viewer, api_viewer, readable, viewer_in, visible_organizations
from observatory.models import ApiKey, Organization, Product, Team

RECENT_ALERTS = 100


class ApiKeysReadOnly(permissions.BasePermission):
    message = "API keys can read budgets and alert rules, not change them: sign in as an admin or a team manager."

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or not isinstance(request.auth, ApiKey)


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

    common_fields = ["id", "organization", "name", "owner", "email_recipients", "slack_webhook_url", "webhook_url",
                     "webhook_secret", "has_webhook_secret", "is_active", "created_at"]

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
                  "forecast_alert", "page_url"]

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
        return readable(queryset, self.request.user, _key_of(self.request))

    def viewer_of(self, organization: Organization) -> Viewer:
        viewer = viewer_in(self.request.user, organization, _key_of(self.request))
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
        return readable(Alert.objects.all(), self.request.user, _key_of(self.request)).prefetch_related("deliveries")


# Cost exports --------------------------------------------------------------------------------------------------------

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class CsvRenderer(renderers.BaseRenderer):
    """Lets `?format=csv` through DRF's content negotiation; the views build the CSV body themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, (str, bytes)) else json.dumps(data)


class XlsxRenderer(CsvRenderer):
    """Lets `?format=xlsx` through content negotiation; the views build the workbook themselves."""

    media_type = XLSX_TYPE
    format = "xlsx"
    charset = None


def _key_of(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def export_scope(request) -> Scope:
    """What an export or spend query may read: the organization picked by `?org=<slug>` (default: the first), all
    of it for org-wide members and keys without a team, else only the requester's teams (a team key: its team)."""
    return api_viewer(request).scope


class ExportView(APIView):
    """GET ?month=YYYY-MM&format=csv|xlsx|json (optional org=<slug>): one month (UTC) of cost, as a CSV or Excel
    download, or JSON."""

    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [renderers.JSONRenderer, CsvRenderer, XlsxRenderer]
    name_prefix = "export"

    def build(self, scope: Scope, month):
        raise NotImplementedError

    def perform_content_negotiation(self, request, force=False):
        # an unknown ?format= would be DRF's bare 404; answer in JSON so get() can say what is allowed
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            return renderers.JSONRenderer(), renderers.JSONRenderer.media_type

    @extend_schema(parameters=[
        OpenApiParameter("month", str, description="Calendar month in UTC, YYYY-MM.", required=True),
        OpenApiParameter("format", str, enum=["csv", "xlsx", "json"], description="Default csv."),
        OpenApiParameter("org", str, description="Organization slug, for people in several."),
    ], responses={(200, "text/csv"): OpenApiTypes.STR, (200, XLSX_TYPE): OpenApiTypes.BINARY,
                  (200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request):
        try:
            month = exports.parse_month(request.query_params.get("month"))
        except ValueError as error:
            return Response({"detail": str(error)}, status=400)
        kind = request.query_params.get("format", "csv")
        if kind not in ("csv", "json", "xlsx"):
            return Response({"detail": "format must be csv, xlsx or json."}, status=400)
        scope = export_scope(request)
        frame = self.build(scope, month)
        if kind == "json":
            return Response({"month": f"{month:%Y-%m}", "rows": exports.to_records(frame)})
        if kind == "xlsx":
            response = HttpResponse(exports.to_xlsx(frame, f"{self.name_prefix} {month:%Y-%m}"), content_type=XLSX_TYPE)
            response["Content-Disposition"] = f'attachment; filename="{self.name_prefix}-{month:%Y-%m}.xlsx"'
            return response
        response = HttpResponse(exports.to_csv(frame), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.name_prefix}-{month:%Y-%m}.csv"'
        return response


class ChargebackExportView(ExportView):
    """Chargeback: cost per team × product × provider × model, plus each team's GPU and idle-GPU share."""

    name_prefix = "chargeback"

    def build(self, scope: Scope, month):
        return exports.chargeback(scope, month)


class FocusExportView(ExportView):
    """FinOps FOCUS 1.x-shaped usage rows, one per day × team × product × model × environment × feature."""

    name_prefix = "focus"

    def build(self, scope: Scope, month):
        return exports.focus(scope, month)


# Spend -------------------------------------------------------------------------------------------------------------

MAX_SPEND_DAYS = 400
SPEND_MONEY = ("cost_usd", "error_cost_usd", "cache_read_savings_usd", "cost_avoided_usd", "cost_per_1k_calls")
SPEND_FIELDS = ("calls", "errors", "streaming_calls", "unpriced_calls", "input_tokens", "cached_input_tokens",
                "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost_usd", "error_cost_usd",
                "cache_read_savings_usd", "app_cache_hits", "cost_avoided_usd", "cost_per_1k_calls")


class SpendQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False, default_timezone=UTC)
    end = serializers.DateTimeField(required=False, default_timezone=UTC)
    group_by = serializers.CharField(required=False, allow_blank=True, default="")
    interval = serializers.ChoiceField(choices=["hour", "day"], required=False)

    def validate_group_by(self, value: str) -> list[str]:
        fields = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [f for f in fields if f not in GROUPABLE]
        if unknown:
            raise serializers.ValidationError(f"cannot group by {', '.join(unknown)}: use {', '.join(GROUPABLE)}.")
        return list(dict.fromkeys(fields))

    def validate(self, data):
        end = data.get("end") or timezone.now()
        start = data.get("start") or end - timedelta(days=30)
        if start >= end:
            raise serializers.ValidationError({"end": "end must be after start."})
        if end - start > timedelta(days=MAX_SPEND_DAYS):
            raise serializers.ValidationError({"start": f"a range is at most {MAX_SPEND_DAYS} days."})
        if data.get("interval") == "hour" and end - start > timedelta(days=31):
            raise serializers.ValidationError({"interval": "hourly series cover at most 31 days; use interval=day."})
        return {**data, "start": start, "end": end}


class SpendView(APIView):
    """GET spend from the rollups: totals, or grouped by team / product / provider / model / environment / feature,
    optionally per hour or day. Scoped like the exports (an API key: its organization; a person: their teams)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[
        OpenApiParameter("start", OpenApiTypes.DATETIME, description="Default: 30 days before end."),
        OpenApiParameter("end", OpenApiTypes.DATETIME, description="Default: now."),
        OpenApiParameter("group_by", str, description=f"Comma-separated: {', '.join(GROUPABLE)}."),
        OpenApiParameter("interval", str, enum=["hour", "day"], description="A series per hour or UTC day."),
        OpenApiParameter("org", str, description="Organization slug, for people in several."),
    ], responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        query = SpendQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        scope = export_scope(request)
        group_by = q["group_by"]
        if q.get("interval"):
            rows = timeseries(scope, q["start"], q["end"], q["interval"], group_by)
        else:
            rows = spend(scope, q["start"], q["end"], group_by)
        names = _slugs_of(rows)
        out = []
        for row in rows:
            item = {}
            if q.get("interval"):
                period = row["period"]
                item["period"] = period.isoformat()
            for field in group_by:
                key = f"{field}_id" if field in ("team", "product") else field
                item[field] = names[field].get(row[key], "") if field in names else row[key]
            for field in SPEND_FIELDS:
                value = row.get(field)
                item[field] = (None if value is None else format(Decimal(value).quantize(Decimal("0.0000000001")), "f")) \
                    if field in SPEND_MONEY else int(value or 0)
            out.append(item)
        total = regroup(rows, ())[0]
        return Response({
            "start": q["start"].isoformat(), "end": q["end"].isoformat(), "group_by": group_by,
            "interval": q.get("interval"), "rows": out,
            "total": {"calls": int(total["calls"]), "cost_usd": format(Decimal(total["cost_usd"]), "f")},
        })


def _slugs_of(rows: list[dict]) -> dict[str, dict]:
    teams = {row.get("team_id") for row in rows} - {None}
    products = {row.get("product_id") for row in rows} - {None}
    return {"team": dict(Team.objects.filter(pk__in=teams).values_list("pk", "slug")),
            "product": dict(Product.objects.filter(pk__in=products).values_list("pk", "slug"))}


# Savings recommendations -------------------------------------------------------------------------------------------

class RecommendationSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    product = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:

        model = Recommendation
        fields = ["id", "organization", "kind", "team", "product", "feature", "model", "title", "evidence", "formula",
                  "monthly_savings_usd", "confidence", "status", "dismissed_reason", "evidence_value", "created_at",
                  "updated_at"]
        read_only_fields = fields


class RecommendationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["open", "accepted", "dismissed"])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class RecommendationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Savings recommendations the requester may read (as for budgets: org-wide members all of their organization,
    team members those scoped to their teams), biggest saving first; ?status= and ?kind= filter.
    Admins, and managers of the recommendation's team, change its status."""

    serializer_class = RecommendationSerializer
    permission_classes = [permissions.IsAuthenticated, ApiKeysReadOnly]
    lookup_value_converter = "int"

    def get_queryset(self):
        queryset = Recommendation.objects.select_related("organization", "team", "product").order_by(
            "-monthly_savings_usd", "id")
        for name in ("status", "kind"):
            value = self.request.query_params.get(name)
            if value:
                queryset = queryset.filter(**{name: value})
        return readable(queryset, self.request.user, _key_of(self.request))

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"], url_path="refresh")
    def refresh(self, request):
        """Recompute the organization's recommendations now (in the background); admins and managers."""
        viewer = api_viewer(request)
        try:
            services.refresh_recommendations(viewer)
        except services.BrokerUnavailable:
            return Response({"detail": "the task broker is unavailable; try again later."}, status=503,
                            headers={"Retry-After": "30"})
        return Response({"detail": "queued", "organization": viewer.organization.slug}, status=202)

    @extend_schema(request=RecommendationStatusSerializer, responses=RecommendationSerializer)
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        """Accept, dismiss (with an optional reason) or reopen a recommendation."""
        recommendation = self.get_object()
        viewer = viewer_in(request.user, recommendation.organization, _key_of(request))
        if viewer is None or not viewer.may_change(recommendation.team, recommendation.product):
            raise PermissionDenied("only organization admins, and managers of its team, may change this.")
        data = RecommendationStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.set_recommendation_status(viewer, recommendation, data.validated_data["status"],
                                           data.validated_data["reason"])
        return Response(RecommendationSerializer(recommendation).data)
