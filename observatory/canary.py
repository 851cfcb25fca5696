"""A model-routing recommendation applied as a canary, and the canary's life after: widen, keep, roll back.

Applying "route feature X from A to B" creates a RoutingRule for the recommendation's team / product / feature
sending `share_percent` (10 by default) of A's calls to B, split by request id. Widening raises the share (e.g. 10 →
50 → 100); keeping ends the experiment with the rule in place at its share; rolling back sends every call to A
again. Gateway processes pick a change up within gateway.rulebook.RULES_SECONDS.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from billing.models import Recommendation
from gateway.rulebook import rulebooks
from gateway.rules import RoutingRule

DEFAULT_SHARE = Decimal(10)
WIDEN_STEPS = (Decimal(10), Decimal(50), Decimal(100))


def suggested_model(recommendation: Recommendation) -> str:
    """The cheaper model a model-routing recommendation names ("" for other kinds)."""
    if recommendation.kind != Recommendation.Kind.MODEL_ROUTING:
        return ""
    evidence = recommendation.evidence if isinstance(recommendation.evidence, dict) else {}
    return str(evidence.get("suggested_model") or "")


def parse_share(raw: object) -> Decimal:
    """A share in percent, 0 < share ≤ 100; ValueError with a message a form can show."""
    try:
        share = Decimal(str(raw).strip().rstrip("%"))
    except (InvalidOperation, ValueError):
        raise ValueError("the share is a percentage between 0 and 100, e.g. 10") from None
    if not share.is_finite() or share <= 0 or share > 100:
        raise ValueError("the share is a percentage above 0 and at most 100")
    return share.quantize(Decimal("0.01"))


def canary_of(recommendation: Recommendation) -> RoutingRule | None:
    return (RoutingRule.objects.filter(recommendation=recommendation).exclude(status=RoutingRule.Status.ROLLED_BACK)
            .order_by("-created_at").first())


def apply_as_canary(recommendation: Recommendation, share_percent: Decimal = DEFAULT_SHARE, user=None) -> RoutingRule:
    """The recommendation's canary rule (created once: applying twice returns the running one)."""
    target = suggested_model(recommendation)
    if not target or not recommendation.model:
        raise ValueError("only a model-routing recommendation naming a cheaper model can be applied as a canary")
    with transaction.atomic():
        Recommendation.objects.select_for_update().filter(pk=recommendation.pk).first()
        running = canary_of(recommendation)
        if running is not None:
            return running
        rule = RoutingRule.objects.create(
            organization_id=recommendation.organization_id, team_id=recommendation.team_id,
            product_id=recommendation.product_id, feature=recommendation.feature,
            name=f"{recommendation.feature or 'calls'}: {recommendation.model} → {target}",
            from_model=recommendation.model, to_model=target, share_percent=share_percent,
            split=RoutingRule.Split.REQUEST_ID, recommendation=recommendation, created_by=user)
        if recommendation.status == Recommendation.Status.OPEN:
            recommendation.status = Recommendation.Status.ACCEPTED
            recommendation.save(update_fields=["status", "updated_at"])
    rulebooks.clear()
    return rule


def next_share(rule: RoutingRule) -> Decimal | None:
    """The next widening step above the rule's share (None at 100%)."""
    return next((step for step in WIDEN_STEPS if step > rule.share_percent), None)


def set_share(rule: RoutingRule, share_percent: Decimal) -> RoutingRule:
    if rule.status == RoutingRule.Status.ROLLED_BACK:
        raise ValueError("this canary was rolled back: apply the recommendation again to start a new one")
    rule.share_percent = share_percent
    rule.updated_at = timezone.now()
    rule.save(update_fields=["share_percent", "updated_at"])
    rulebooks.clear()
    return rule


def keep(rule: RoutingRule) -> RoutingRule:
    return _set_status(rule, RoutingRule.Status.KEPT)


def roll_back(rule: RoutingRule) -> RoutingRule:
    return _set_status(rule, RoutingRule.Status.ROLLED_BACK)


def _set_status(rule: RoutingRule, status: str) -> RoutingRule:
    rule.status = status
    rule.updated_at = timezone.now()
    rule.save(update_fields=["status", "updated_at"])
    rulebooks.clear()
    return rule
