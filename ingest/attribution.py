"""Attribution rules applied to a call: which team/product/feature it belongs to when it does not say so itself.

The rules are configuration users edit (stored by billing, read through `ingest.hooks`); they are cached per
process and re-read every few seconds, so ingest never queries them per call. `billing.attribution.reattribute`
applies the same `attribution_for` to stored calls, so ingest and re-attribution always agree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from fnmatch import fnmatchcase

from django.db import models

from ingest import hooks
from ingest.records import Rule
from observatory.models import ApiKey

REFRESH_SECONDS = 5.0


class RuleField(models.TextChoices):
    """What a rule can look at; any other value names the call's field of that name."""

    SERVICE_NAME = "service_name", "service.name"
    API_KEY = "api_key", "API key prefix"
    ENVIRONMENT = "environment", "environment"
    MODEL = "model", "model"
    PROVIDER = "provider", "provider"
    END_USER = "end_user", "end user id"
    ATTRIBUTE = "attribute", "any span attribute"


class RuleCache:
    """Each organization's rules in order, re-read at most every REFRESH_SECONDS (rules are few; an edited
    rule must be picked up too, so no id/count stamp)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[int, list[Rule]] = {}
        self._checked: float | None = None

    def rules_for(self, organization_id: int) -> list[Rule]:
        now = time.monotonic()
        if self._checked is None or now - self._checked >= REFRESH_SECONDS:
            self._checked = now
            self.reload()
        return self._rules.get(organization_id, [])

    def reload(self) -> None:
        reader = hooks.rule_reader()
        grouped: dict[int, list[Rule]] = {}
        for rule in reader() if reader else ():
            grouped.setdefault(rule.organization_id, []).append(rule)
        with self._lock:
            self._rules = grouped

    def clear(self) -> None:
        with self._lock:
            self._rules, self._checked = {}, None


rule_cache = RuleCache()


def value_for(rule: Rule, call, key_prefix: str) -> str:
    """The call's value for the field a rule looks at (works on CallFields and LLMCall alike)."""
    field = rule.field
    if field == RuleField.SERVICE_NAME:
        return call.service_name
    if field == RuleField.API_KEY:
        return key_prefix
    if field == RuleField.MODEL:
        return call.response_model or call.request_model
    if field == RuleField.ATTRIBUTE:
        value = (call.attributes or {}).get(rule.attribute_key)
        return "" if value is None else str(value)
    return getattr(call, field, "") or ""


def first_match(rules: Sequence[Rule], call, key_prefix: str) -> Rule | None:
    for rule in rules:
        value = value_for(rule, call, key_prefix)
        if value and fnmatchcase(value, rule.pattern):
            return rule
    return None


def attribution_for(
    rules: Sequence[Rule], call, api_key: ApiKey | None, team_id: int | None = None, product_id: int | None = None
) -> tuple[int | None, int | None, str, str]:
    """(team, product, source, feature) of a call. `team_id`/`product_id` are what the call named itself
    (source "call"); what is missing comes from the first matching rule, then the key's defaults."""
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
