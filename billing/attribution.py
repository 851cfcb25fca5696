"""Attribution rules as stored (billing.models.AttributionRule) and re-attribution of stored calls.

Ingest matches the rules as calls arrive (ingest.attribution), reading them through `attribution_rules`, which
billing registers with ingest at start-up. `reattribute` applies the current rules to stored calls (those not
attributed by the call itself) with the same matching, so both always agree.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from billing.models import AttributionRule
from billing.pricing.repricing import call_pages, day_windows
from ingest.attribution import attribution_for
from ingest.models import LLMCall
from ingest.records import Rule
from observatory.models import ApiKey

ATTRIBUTION_INPUTS = (
    "start_time", "team", "product", "attribution", "feature", "api_key", "service_name", "provider",
    "request_model", "response_model", "environment", "end_user", "attributes",
)


def attribution_rules(organization_id: int | None = None) -> list[Rule]:
    """An organization's rules (every organization's when None) in the order they are tried, as plain data."""
    rows = AttributionRule.objects.order_by("position", "id")
    if organization_id is not None:
        rows = rows.filter(organization_id=organization_id)
    return [
        Rule(organization_id=row.organization_id, field=row.field, pattern=row.pattern, attribute_key=row.attribute_key,
             team_id=row.team_id, product_id=row.product_id, feature=row.feature)
        for row in rows
    ]


def reattribute(organization_id: int, since: datetime, until: datetime | None = None, batch: int = 5000) -> int:
    """Apply the current rules (then key defaults) to stored calls that started in [since, until) and did not
    name their own team/product. Changed rows get a new `ingested_at` so their hours are rolled up again.
    Reads a UTC day (partition) at a time in pages; each page's changes are one transaction.
    Returns the number of calls changed. Idempotent."""
    rules = attribution_rules(organization_id)
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
