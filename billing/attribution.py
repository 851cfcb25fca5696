"""Attribution rules: which team/product/feature a call belongs to when it does not say so itself.

Rules are cached per process and re-read every few seconds, so ingest never queries them per call.
`reattribute` applies the current rules to stored calls (those not attributed by the call itself).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from fnmatch import fnmatchcase

from django.db import transaction
from django.db.models import Max, Q

from billing.models import AttributionRule

REFRESH_SECONDS = 5.0


class RuleCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[int, list[AttributionRule]] = {}
        self._stamp: tuple | None = None
        self._checked = 0.0

    def rules_for(self, organization_id: int) -> list[AttributionRule]:
        now = time.monotonic()
        if now - self._checked >= REFRESH_SECONDS:
            self._checked = now
            stamp = tuple(AttributionRule.objects.aggregate(n=Max("id")).values()) + (AttributionRule.objects.count(),)
            if stamp != self._stamp:
                self.reload(stamp)
        return self._rules.get(organization_id, [])

    def reload(self, stamp: tuple | None = None) -> None:
        grouped: dict[int, list[AttributionRule]] = {}
        for rule in AttributionRule.objects.order_by("position", "id"):
            grouped.setdefault(rule.organization_id, []).append(rule)
        with self._lock:
            self._rules = grouped
            self._stamp = stamp

    def clear(self) -> None:
        with self._lock:
            self._rules, self._stamp, self._checked = {}, None, 0.0


rule_cache = RuleCache()


def value_for(rule: AttributionRule, call, key_prefix: str) -> str:
    """The call's value for the field a rule looks at (works on CallFields and LLMCall alike)."""
    field = rule.field
    if field == AttributionRule.Field.SERVICE_NAME:
        return call.service_name
    if field == AttributionRule.Field.API_KEY:
        return key_prefix
    if field == AttributionRule.Field.MODEL:
        return call.response_model or call.request_model
    if field == AttributionRule.Field.ATTRIBUTE:
        value = (call.attributes or {}).get(rule.attribute_key)
        return "" if value is None else str(value)
    return getattr(call, field, "") or ""


def first_match(rules: list[AttributionRule], call, key_prefix: str) -> AttributionRule | None:
    for rule in rules:
        value = value_for(rule, call, key_prefix)
        if value and fnmatchcase(value, rule.pattern):
            return rule
    return None


def matching_rule(organization_id: int, call, key_prefix: str = "") -> AttributionRule | None:
    rules = rule_cache.rules_for(organization_id)
    return first_match(rules, call, key_prefix) if rules else None


def reattribute(organization_id: int, since: datetime, until: datetime | None = None, batch: int = 5000) -> int:
    """Apply the current rules (then key defaults) to stored calls whose team/product did not come from
    the call itself. Returns the number of calls changed. Idempotent."""
    from ingest.models import LLMCall

    rules = list(AttributionRule.objects.filter(organization_id=organization_id).order_by("position", "id"))
    calls = LLMCall.objects.filter(organization_id=organization_id, start_time__gte=since).exclude(attribution="call")
    if until is not None:
        calls = calls.filter(start_time__lt=until)
    changed = 0
    for call in calls.select_related("api_key").iterator(chunk_size=batch):
        prefix = call.api_key.prefix if call.api_key_id and call.api_key else ""
        rule = first_match(rules, call, prefix)
        team_id = rule.team_id if rule else None
        product_id = rule.product_id if rule else None
        source = "rule" if rule and (team_id or product_id) else ""
        if team_id is None and call.api_key_id and call.api_key and call.api_key.default_team_id:
            team_id, source = call.api_key.default_team_id, source or "key"
        if product_id is None and call.api_key_id and call.api_key and call.api_key.default_product_id:
            product_id, source = call.api_key.default_product_id, source or "key"
        feature = rule.feature if rule and rule.feature and not call.feature else call.feature
        if (team_id, product_id, source, feature) != (call.team_id, call.product_id, call.attribution, call.feature):
            with transaction.atomic():
                LLMCall.objects.filter(Q(pk=call.pk) & Q(start_time=call.start_time)).update(
                    team_id=team_id, product_id=product_id, attribution=source, feature=feature, ingested_at=_now()
                )
            changed += 1
    return changed


def _now():
    from django.utils import timezone

    return timezone.now()
