"""User feedback on a call (a thumbs up, a rating): sent by the app with `POST /api/v1/feedback` or the SDK's
`feedback()`, tied to the call it is about by trace/span id or the provider's response id (the `id` a gateway
answer carries). The canary page averages it per arm. A comment is kept only when the organization captures content.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import models
from django.utils import timezone

from observatory.models import ApiKey

LOOKBACK_DAYS = 30  # feedback is for recent calls: the lookup reads at most this many days of partitions
MAX_COMMENT_CHARS = 2000


class Feedback(models.Model):
    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    # the call it is about (LLMCall's unique key; no foreign key on a partitioned table)
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    call_start_time = models.DateTimeField()
    score = models.DecimalField(max_digits=12, decimal_places=4)
    comment = models.TextField(blank=True, default="")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "trace_id", "span_id"], name="feedback_call")]

    def __str__(self) -> str:
        return f"feedback {self.score} on {self.trace_id}/{self.span_id}"


def record_feedback(api_key: ApiKey, calls, score: Decimal, comment: str = "") -> Feedback | None:
    """Store feedback on the newest call of `calls` (the requester's readable calls already narrowed to the ids
    given) from the last LOOKBACK_DAYS; None when there is none (the API's 404)."""
    since = timezone.now() - timedelta(days=LOOKBACK_DAYS)
    found = calls.filter(start_time__gte=since).order_by("-start_time").values("trace_id", "span_id", "start_time").first()
    if found is None:
        return None
    keep_comment = api_key.organization.capture_content
    return Feedback.objects.create(
        organization_id=api_key.organization_id, trace_id=found["trace_id"], span_id=found["span_id"],
        call_start_time=found["start_time"], score=score,
        comment=comment[:MAX_COMMENT_CHARS] if keep_comment else "", api_key=api_key,
    )
