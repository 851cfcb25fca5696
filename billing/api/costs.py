"""REST API for cost: spend from the rollups (`/api/v1/spend`) and the chargeback and FOCUS exports, scoped by
`observatory.access` like every read."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from decimal import Decimal

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, renderers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import exports, tables
from billing.queries import GROUPABLE, regroup, spend, timeseries
from observatory.access import Scope, api_viewer
from observatory.models import Product, Team


class CsvRenderer(renderers.BaseRenderer):
    """Lets `?format=csv` through DRF's content negotiation; the views build the CSV body themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, (str, bytes)) else json.dumps(data)


class XlsxRenderer(CsvRenderer):
    """Lets `?format=xlsx` through content negotiation; the views build the workbook themselves."""

    media_type = tables.XLSX_TYPE
    format = "xlsx"
    charset = None


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
    ], responses={(200, "text/csv"): OpenApiTypes.STR, (200, tables.XLSX_TYPE): OpenApiTypes.BINARY,
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
        table = self.build(scope, month)
        name = f"{self.name_prefix}-{month:%Y-%m}"
        if kind == "json":
            return Response({"month": f"{month:%Y-%m}", "rows": tables.json_rows(table)})
        if kind == "xlsx":
            return tables.xlsx_response(table, f"{name}.xlsx", sheet=f"{self.name_prefix} {month:%Y-%m}")
        return tables.csv_response(table, f"{name}.csv")


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
SPEND_FIELDS = ("calls", "errors", "streaming_calls", "unpriced_calls", "implausible_calls", "usage_missing_calls",
                "input_tokens",
                "cached_input_tokens",
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
