"""REST API for call records: POST a JSON batch (clients without OTel), GET with filters and a cursor."""

from __future__ import annotations

import secrets
from datetime import UTC

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from ingest.models import LLMCall
from ingest.records import CallFields
from ingest.services import store_calls
from observatory.access import readable
from observatory.models import ApiKey

MAX_TOKENS = 100_000_000
MAX_BATCH = 5_000
HEX = "0123456789abcdef"


class CallSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    product = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model = serializers.CharField(read_only=True)
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=10, read_only=True, coerce_to_string=True)

    class Meta:
        model = LLMCall
        fields = [
            "trace_id", "span_id", "parent_span_id", "start_time", "duration_ms", "ttft_ms", "provider", "operation",
            "request_model", "response_model", "model", "input_tokens", "cached_input_tokens", "cache_write_tokens",
            "output_tokens", "reasoning_tokens", "usage_reported", "streaming", "status", "error_type", "http_status",
            "finish_reason", "team", "product", "feature", "environment", "end_user", "session", "service_name",
            "source", "source_version", "app_cache_hit", "cost_usd", "cost_status", "cost_avoided_usd",
            "provided_cost_usd", "prompt_prefix_hash", "request_hash", "ingested_at",
        ]
        read_only_fields = fields


def _hex_id(length: int):
    def check(value: str) -> None:
        if len(value) != length or any(ch not in HEX for ch in value) or set(value) == {"0"}:
            raise serializers.ValidationError(f"must be {length} lowercase hex characters, not all zero")

    return check


class NewCallSerializer(serializers.Serializer):
    """One call posted to the REST API; token semantics as in the call record (input includes cache)."""

    trace_id = serializers.CharField(required=False, validators=[_hex_id(32)])
    span_id = serializers.CharField(required=False, validators=[_hex_id(16)])
    parent_span_id = serializers.CharField(required=False, allow_blank=True, default="")
    start_time = serializers.DateTimeField(default_timezone=UTC)
    duration_ms = serializers.FloatField(min_value=0, max_value=86_400_000, default=0)
    ttft_ms = serializers.FloatField(min_value=0, max_value=86_400_000, required=False, allow_null=True, default=None)
    provider = serializers.CharField(max_length=64)
    operation = serializers.CharField(max_length=32, default="chat")
    request_model = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    response_model = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    input_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    cached_input_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    cache_write_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    output_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    reasoning_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    streaming = serializers.BooleanField(default=False)
    status = serializers.ChoiceField(choices=["ok", "error"], default="ok")
    error_type = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    http_status = serializers.IntegerField(min_value=100, max_value=599, required=False, allow_null=True, default=None)
    finish_reason = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    team = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    product = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    feature = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    environment = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    end_user = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    session = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    app_cache_hit = serializers.BooleanField(default=False)
    prompt_prefix_hash = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    request_hash = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")

    def validate(self, data):
        if not (data["request_model"] or data["response_model"]):
            raise serializers.ValidationError("give request_model or response_model")
        if data["cached_input_tokens"] + data["cache_write_tokens"] > data["input_tokens"]:
            raise serializers.ValidationError("input_tokens includes cached_input_tokens and cache_write_tokens")
        if data["reasoning_tokens"] > data["output_tokens"]:
            raise serializers.ValidationError("output_tokens includes reasoning_tokens")
        return data



def call_from_data(validated: dict) -> CallFields:
    """A CallFields from one validated posted call; ids are generated when the client gave none."""
    data = dict(validated)
    data.setdefault("trace_id", secrets.token_hex(16))
    data.setdefault("span_id", secrets.token_hex(8))
    return CallFields(**data, source="rest-api")


class CallBatchSerializer(serializers.Serializer):
    calls = NewCallSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)


class CallQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False, default_timezone=UTC)
    end = serializers.DateTimeField(required=False, default_timezone=UTC)
    team = serializers.SlugField(required=False)
    product = serializers.SlugField(required=False)
    model = serializers.CharField(required=False, max_length=255)
    provider = serializers.CharField(required=False, max_length=64)
    trace_id = serializers.CharField(required=False, validators=[_hex_id(32)])
    status = serializers.ChoiceField(choices=["ok", "error"], required=False)
    environment = serializers.CharField(required=False, max_length=64)
    feature = serializers.CharField(required=False, max_length=200)
    end_user = serializers.CharField(required=False, max_length=200)
    session = serializers.CharField(required=False, max_length=200)
    cost_status = serializers.CharField(required=False, max_length=16)


class CallCursor(CursorPagination):
    ordering = ("-start_time", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def calls_visible_to(user, auth) -> QuerySet[LLMCall]:
    """Calls the requester may read (see `observatory.access`): a team key or a team member their team's calls only."""
    api_key = auth if isinstance(auth, ApiKey) else None
    return readable(LLMCall.objects.select_related("team", "product"), user, api_key)


class CallListCreate(generics.ListAPIView):
    serializer_class = CallSerializer
    pagination_class = CallCursor

    def get_queryset(self):
        query = CallQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        calls = calls_visible_to(self.request.user, self.request.auth)
        if "start" in q:
            calls = calls.filter(start_time__gte=q["start"])
        if "end" in q:
            calls = calls.filter(start_time__lt=q["end"])
        if "team" in q:
            calls = calls.filter(team__slug=q["team"])
        if "product" in q:
            calls = calls.filter(product__slug=q["product"])
        if "model" in q:
            calls = calls.filter(Q(response_model=q["model"]) | Q(request_model=q["model"]))
        for name in ("provider", "trace_id", "status", "environment", "feature", "end_user", "session", "cost_status"):
            if name in q:
                calls = calls.filter(**{name: q[name]})
        return calls

    @extend_schema(parameters=[OpenApiParameter(name, str) for name in CallQuerySerializer().fields])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=CallBatchSerializer, responses={202: None})
    def post(self, request):
        if not isinstance(request.auth, ApiKey):
            raise PermissionDenied("posting calls needs an API key (Authorization: Bearer <key>)")
        payload = request.data if isinstance(request.data, dict) else {"calls": request.data}
        batch = CallBatchSerializer(data=payload)
        batch.is_valid(raise_exception=True)
        calls = [call_from_data(item) for item in batch.validated_data["calls"]]
        outcome = store_calls(request.auth, calls)
        return Response(
            {"accepted": outcome.calls_inserted, "duplicates": outcome.calls_duplicate}, status=status.HTTP_202_ACCEPTED
        )
