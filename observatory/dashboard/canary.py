"""Reads for a canary's page (/routing/<id>/): the two arms of a routing rule side by side, from the call records the
gateway wrote since the rule was created (attributes `observatory.route.rule` and `.arm`), and the saving realized.

Per arm: calls, cost per call (the arm's cost ÷ its calls), error rate, p50/p95 latency (exact, from the calls),
and the mean user feedback score where the app sent feedback (ingest.feedback). App-cache hits are left out: no
model served them. Realized saving = (cost per call of the control arm A − cost per call of the canary arm B) ×
B's calls: what B's calls would have cost more on A. E.g. A $0.0100/call, B $0.0010/call, 20 calls on B → $0.18.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Aggregate, Avg, Count, Exists, FloatField, OuterRef, Q, Subquery, Sum
from django.db.models.fields.json import KT

from gateway.routing import ARM, CANARY, CONTROL, RULE
from gateway.rules import RoutingRule
from ingest.feedback import Feedback
from ingest.models import LLMCall
from observatory.access import Viewer

ZERO = Decimal(0)


class Percentile(Aggregate):
    function = "percentile_cont"
    template = "percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=fraction, **extra)


@dataclass(frozen=True)
class Arm:
    name: str  # control / canary
    model: str
    calls: int = 0
    cost_usd: Decimal = ZERO
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    feedback_count: int = 0
    feedback_mean: Decimal | None = None

    @property
    def cost_per_call(self) -> Decimal | None:
        return self.cost_usd / self.calls if self.calls else None

    @property
    def error_pct(self) -> Decimal | None:
        return Decimal(self.errors * 100) / self.calls if self.calls else None


@dataclass(frozen=True)
class Canary:
    rule: RoutingRule
    control: Arm
    canary: Arm

    @property
    def realized_saving_usd(self) -> Decimal | None:
        """(cost per call of A − cost per call of B) × B's calls; None until both arms have calls."""
        a, b = self.control.cost_per_call, self.canary.cost_per_call
        if a is None or b is None:
            return None
        return (a - b) * self.canary.calls


def rule_calls(viewer: Viewer, rule: RoutingRule):
    """The calls this rule routed that the viewer may read (app-cache hits aside)."""
    calls = LLMCall.objects.filter(organization_id=viewer.organization.id, start_time__gte=rule.created_at,
                                   attributes__contains={RULE: str(rule.id)}, app_cache_hit=False)
    return viewer.readable(calls)


def canary_of(viewer: Viewer, rule: RoutingRule) -> Canary:
    calls = rule_calls(viewer, rule).annotate(arm=KT(f"attributes__{ARM}"))
    rows = {row["arm"]: row for row in calls.values("arm").annotate(
        calls=Count("id"), cost=Sum("cost_usd"), errors=Count("id", filter=Q(status="error")),
        p50=Percentile("duration_ms", 0.5), p95=Percentile("duration_ms", 0.95))}
    arm_of_call = calls.filter(trace_id=OuterRef("trace_id"), span_id=OuterRef("span_id"),
                               start_time=OuterRef("call_start_time"))
    feedback = {row["arm"]: row for row in Feedback.objects.filter(organization_id=viewer.organization.id)
                .filter(Exists(arm_of_call)).annotate(arm=Subquery(arm_of_call.values("arm")[:1]))
                .values("arm").annotate(count=Count("id"), mean=Avg("score"))}
    models = {CONTROL: rule.from_model or "the requested model", CANARY: rule.to_model}

    def arm(name: str) -> Arm:
        row, scores = rows.get(name, {}), feedback.get(name, {})
        return Arm(name, models[name], calls=row.get("calls", 0), cost_usd=row.get("cost") or ZERO,
                   errors=row.get("errors", 0), p50_ms=row.get("p50"), p95_ms=row.get("p95"),
                   feedback_count=scores.get("count", 0), feedback_mean=scores.get("mean"))

    return Canary(rule, arm(CONTROL), arm(CANARY))


def canaries_by_recommendation(viewer: Viewer) -> dict[int, RoutingRule]:
    """The running (or kept) canary of each recommendation the viewer may read."""
    rules = viewer.readable(RoutingRule.objects.filter(organization_id=viewer.organization.id)
                            .exclude(recommendation=None).exclude(status=RoutingRule.Status.ROLLED_BACK))
    found: dict[int, RoutingRule] = {}
    for rule in rules.order_by("created_at"):
        found[rule.recommendation_id] = rule
    return found
