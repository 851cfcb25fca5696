"""Attribution rules: which team/product/feature a call belongs to when it does not say so itself.

Rules are cached per process and re-read every few seconds, so ingest never queries them per call.
`reattribute` applies the current rules to stored calls (those not attributed by the call itself).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from fnmatch import fnmatchcase

from django.utils import timezone

from billing.models import AttributionRule
from billing.repricing import call_pages, day_windows
from ingest.models import LLMCall
from observatory.models import ApiKey

REFRESH_SECONDS = 5.0
ATTRIBUTION_INPUTS = (
    "start_time", "team", "product", "attribution", "feature", "api_key", "service_name", "provider",
    "request_model", "response_model", "environment", "end_user", "attributes",
)


class RuleCache:
    """Each organization's rules in order, re-read at most every REFRESH_SECONDS (rules are few; an edited
    rule must be picked up too, so no id/count stamp)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[int, list[AttributionRule]] = {}
        self._checked: float | None = None

    def rules_for(self, organization_id: int) -> list[AttributionRule]:
        now = time.monotonic()
        if self._checked is None or now - self._checked >= REFRESH_SECONDS:
            self._checked = now
            self.reload()
        return self._rules.get(organization_id, [])

    def reload(self) -> None:
        grouped: dict[int, list[AttributionRule]] = {}
        for rule in AttributionRule.objects.order_by("position", "id"):
            grouped.setdefault(rule.organization_id, []).append(rule)
        with self._lock:
            self._rules = grouped

    def clear(self) -> None:
        with self._lock:
            self._rules, self._checked = {}, None


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


def attribution_for(
    rules: list[AttributionRule], call, api_key: ApiKey | None, team_id: int | None = None, product_id: int | None = None
) -> tuple[int | None, int | None, str, str]:
    """(team, product, source, feature) of a call. `team_id`/`product_id` are what the call named itself
    (source "call"); what is missing comes from the first matching rule, then the key's defaults.
    Ingest and `reattribute` both decide through here, so they always agree."""
    source = "call" if team_id is not None or product_id is not None else ""
    feature = call.feature
    if team_id is None or product_id is None:
        rule = first_match(rules, call, api_key.prefix if api_key else "")
        if rule is not None:
            team_id = team_id if team_id is not None else rule.team_id
            product_id = product_id if product_id is not None else rule.product_id
            feature = rule.feature if rule.feature and not call.feature else call.feature
            source = source or "rule"
    if team_id is None and api_key and api_key.default_team_id is not None:
        team_id, source = api_key.default_team_id, source or "key"
    if product_id is None and api_key and api_key.default_product_id is not None:
        product_id, source = api_key.default_product_id, source or "key"
    return team_id, product_id, source, feature


def reattribute(organization_id: int, since: datetime, until: datetime | None = None, batch: int = 5000) -> int:
    """Apply the current rules (then key defaults) to stored calls that started in [since, until) and did not
    name their own team/product. Changed rows get a new `ingested_at` so their hours are rolled up again.
    Reads a UTC day (partition) at a time in pages; each page's changes are one transaction.
    Returns the number of calls changed. Idempotent."""
    rules = list(AttributionRule.objects.filter(organization_id=organization_id).order_by("position", "id"))
    keys = {key.pk: key for key in ApiKey.objects.filter(organization_id=organization_id)}
    calls = LLMCall.objects.filter(organization_id=organization_id).exclude(attribution="call")
    changed = 0
    for start, end in day_windows(since, until or timezone.now()):
        window = calls.filter(start_time__gte=start, start_time__lt=end)
        for page in call_pages(window.only(*ATTRIBUTION_INPUTS), batch):
            moved = []
            for call in page:
                new = attribution_for(rules, call, keys.get(call.api_key_id))
                if new != (call.team_id, call.product_id, call.attribution, call.feature):
                    call.team_id, call.product_id, call.attribution, call.feature = new
                    moved.append(call)
            if moved:
                now = timezone.now()
                for call in moved:
                    call.ingested_at = now
                window.bulk_update(moved, ["team", "product", "attribution", "feature", "ingested_at"], batch_size=1000)
            changed += len(moved)
    return changed
