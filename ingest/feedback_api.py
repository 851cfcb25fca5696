"""`POST /api/v1/feedback`: an app's user feedback on one of its calls (API key auth), found by trace id (and span
id) or by the provider's response id — the `id` of an answer that came through the gateway."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest.api import _hex_id, calls_visible_to
from ingest.feedback import MAX_COMMENT_CHARS, record_feedback
from observatory.models import ApiKey

MAX_SCORE = 1_000_000


class FeedbackSerializer(serializers.Serializer):
    trace_id = serializers.CharField(required=False, validators=[_hex_id(32)])
    span_id = serializers.CharField(required=False, validators=[_hex_id(16)])
    response_id = serializers.CharField(required=False, max_length=512)
    score = serializers.DecimalField(max_digits=12, decimal_places=4, min_value=-MAX_SCORE, max_value=MAX_SCORE,
                                     help_text="e.g. 1 / 0 for thumbs up / down, or a 1–5 rating")
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_COMMENT_CHARS, default="",
                                    help_text="kept only when the organization captures content")

    def validate(self, data):
        if not data.get("trace_id") and not data.get("response_id"):
            raise serializers.ValidationError("name the call: give trace_id (and span_id) or response_id")
        if data.get("span_id") and not data.get("trace_id"):
            raise serializers.ValidationError("span_id needs its trace_id")
        return data


class FeedbackCreate(APIView):
    @extend_schema(request=FeedbackSerializer, responses={201: None})
    def post(self, request):
        if not isinstance(request.auth, ApiKey):
            raise PermissionDenied("sending feedback needs an API key (Authorization: Bearer <key>)")
        form = FeedbackSerializer(data=request.data if isinstance(request.data, dict) else {})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        calls = calls_visible_to(request.user, request.auth).filter(organization_id=request.auth.organization_id)
        if data.get("trace_id"):
            calls = calls.filter(trace_id=data["trace_id"])
            if data.get("span_id"):
                calls = calls.filter(span_id=data["span_id"])
        if data.get("response_id"):
            calls = calls.filter(response_id=data["response_id"])
        feedback = record_feedback(request.auth, calls, data["score"], data["comment"])
        if feedback is None:
            raise Http404("no call of yours with these ids in the last 30 days")
        return Response({"id": feedback.id, "trace_id": feedback.trace_id, "span_id": feedback.span_id,
                         "score": str(feedback.score.normalize())}, status=status.HTTP_201_CREATED)
