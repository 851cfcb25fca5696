"""Ingest: decoded spans → normalized, attributed, priced call rows → the store.

The HTTP views and the REST API both end here, so every path applies the same rules:
team/product from the call, else the attribution rules, else the API key's defaults; content dropped unless the
organization captures it (and then calls and trace spans keep only the attributes known not to be content,
ingest.mappers.normalize.safe_attributes); cost from the pricer billing registers (ingest.hooks): the catalog in
effect at the call's start time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter

import orjson
from django.utils.text import slugify

from ingest import hooks, store
from ingest.attribution import attribution_for, rule_cache
from ingest.mappers import InvalidSpan, map_log_record, select_calls
from ingest.mappers.normalize.attribution import apply_attribution
from ingest.mappers.normalize.safe_attributes import without_content
from ingest.model_names import canonical_model
from ingest.models import CostStatus, MetricSample
from ingest.records import CallFields, IngestCost, SpanView
from ingest.span_owners import Owner, SpanRef, inherited_owners
from ingest.time_bounds import time_ns_problem
from observatory.models import ApiKey, Product, Team

log = logging.getLogger(__name__)

MAX_TEXT = 512  # longest stored label (model, feature, user ...); longer values are cut
_CONTEXT_ATTRIBUTE_LIMIT = 64
UNPRICED = IngestCost(None, CostStatus.PENDING, None)  # with no pricer registered (ingest.hooks)


@dataclass(slots=True, unsafe_hash=True)
class Attribution:
    """A call's team and product and where they came from. A value: never changed once made (not `frozen`, as
    IngestCost)."""

    team_id: int | None
    product_id: int | None
    source: str  # call | rule | key | "" (unattributed)


@dataclass
class IngestOutcome:
    calls_inserted: int = 0
    calls_duplicate: int = 0
    context_spans: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if not self.errors:
            return ""
        shown = "; ".join(self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        return f"{self.rejected} span(s) rejected: {shown}{more}"


class TenancyCache:
    """Reported team/product name → id, per organization; a new name creates the team/product (by its slug)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._teams: dict[tuple[int, str], int] = {}
        self._products: dict[tuple[int, str], int] = {}

    def team_id(self, organization_id: int, name: str) -> int | None:
        key = (organization_id, name)
        found = self._teams.get(key)
        if found is None:
            slug = slugify(name)[:100]
            if not slug:
                return None
            team, _ = Team.objects.get_or_create(organization_id=organization_id, slug=slug, defaults={"name": name[:200]})
            with self._lock:
                self._teams[key] = found = team.pk
        return found

    def product_id(self, organization_id: int, name: str, team_id: int | None) -> int | None:
        key = (organization_id, name)
        found = self._products.get(key)
        if found is None:
            slug = slugify(name)[:100]
            if not slug:
                return None
            product, _ = Product.objects.get_or_create(
                organization_id=organization_id, slug=slug, defaults={"name": name[:200], "team_id": team_id}
            )
            with self._lock:
                self._products[key] = found = product.pk
        return found

    def clear(self) -> None:
        with self._lock:
            self._teams.clear()
            self._products.clear()


tenancy_cache = TenancyCache()


def _cut(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT]


def split_calls(spans: list[SpanView]) -> tuple[list[CallFields], list[SpanView], list[str]]:
    """Model calls and context spans of a batch; spans whose values are nonsense are rejected one by one."""
    invalid: list[InvalidSpan] = []
    calls, context = select_calls(spans, invalid)
    return calls, context, [f"span {exc.span.span_id}: {exc}" for exc in invalid]


def ingest_spans(api_key: ApiKey, spans: list[SpanView], rejected: int = 0, errors: list[str] | None = None) -> IngestOutcome:
    """Normalize, attribute, price and store one export's spans. Idempotent on (trace, span, start)."""
    return store_calls(api_key, *map_export(spans, rejected, errors))


def map_export(
    spans: list[SpanView], rejected: int = 0, errors: list[str] | None = None
) -> tuple[list[CallFields], list[SpanView], IngestOutcome]:
    """An export's model calls and context spans, and the outcome so far (the spans the decoder and the mappers
    rejected); `store_calls` completes it."""
    outcome = IngestOutcome(rejected=rejected, errors=list(errors or []))
    calls, context, invalid = split_calls(spans)
    outcome.rejected += len(invalid)
    outcome.errors.extend(invalid)
    return calls, context, outcome


@dataclass
class PreparedWrite:
    """One export's rows, attributed and priced, ready for `store.write_batch` (alone or with other exports')."""

    org_id: int
    call_rows: list[tuple]
    span_rows: list[tuple]
    content_rows: list[tuple]
    spent: list[hooks.StoredSpend]


def store_calls(
    api_key: ApiKey, calls: list[CallFields], context: list[SpanView] = (), outcome: IngestOutcome | None = None
) -> IngestOutcome:
    """Attribute, price and write normalized calls (from OTLP or the REST API) in one transaction."""
    outcome = outcome or IngestOutcome()
    prepared = prepare_write(api_key, calls, context)
    result = write_prepared([prepared])
    outcome.calls_inserted = result.calls_inserted
    outcome.calls_duplicate = result.calls_duplicate
    outcome.context_spans = len(prepared.span_rows)
    return outcome


def prepare_write(api_key: ApiKey, calls: list[CallFields], context: Sequence[SpanView] = ()) -> PreparedWrite:
    """Attribute and price an export's calls and build its rows (calls, context spans, content when captured)."""
    organization = api_key.organization
    org_id = organization.pk
    capture = organization.capture_content
    content_cap = organization.content_max_bytes
    pricer = hooks.call_pricer()
    declared = None if capture else declared_keys(org_id)
    call_rows, content_rows, owned_calls = [], [], []
    listening = hooks.spend_listener() is not None
    spent: list[hooks.StoredSpend] = []
    for call in calls:
        attribution = attribute_call(api_key, call)  # rules see every attribute, before any is withheld
        cost = pricer(org_id, call) if pricer else UNPRICED
        if listening and cost.cost_usd:
            spent.append((attribution.team_id, attribution.product_id, call.start_time, cost.cost_usd))
        if capture:
            if call.input_content or call.output_content:
                content_rows.append(content_row(org_id, call, content_cap))
        else:
            call.attributes = without_content(call.attributes, declared)
        call_rows.append(call_row(org_id, api_key.pk, call, attribution, cost))
        if context:  # context spans without a team take the one the calls around them agree on
            owned_calls.append((span_ref(call), (attribution.team_id, attribution.product_id)))
    span_rows = [
        context_row(org_id, span, capture, owner, declared)
        for span, owner in zip(context, span_owners(api_key, context, owned_calls), strict=True)
    ]
    return PreparedWrite(org_id, call_rows, span_rows, content_rows, spent)


def write_prepared(batch: Sequence[PreparedWrite]) -> store.WriteResult:
    """Write the rows of one or more exports in one transaction (all or none: a retry cannot double count; rows
    already stored are skipped), then tell the spend listener (budgets) what each organization spent."""
    if len(batch) == 1:
        only = batch[0]
        result = store.write_batch(only.call_rows, only.span_rows, only.content_rows)
    else:
        result = store.write_batch([row for item in batch for row in item.call_rows],
                                   [row for item in batch for row in item.span_rows],
                                   [row for item in batch for row in item.content_rows])
    listener = hooks.spend_listener()
    for item in batch:
        if listener is None or not item.spent:
            continue
        try:
            listener(item.org_id, item.spent)
        except Exception:  # the calls are stored; a counter behind until the next reconciliation is no reason to fail
            log.exception("ingest: the spend listener failed on %s call(s)", len(item.spent))
    return result


def declared_keys(org_id: int) -> frozenset[str]:
    """The span attributes the organization's attribution rules look at: its own tags, kept with capture off
    so that re-attribution (billing.attribution.reattribute) still sees them on stored calls."""
    return frozenset(rule.attribute_key for rule in rule_cache.rules_for(org_id) if rule.attribute_key)


def attribute_call(api_key: ApiKey, call: CallFields) -> Attribution:
    """Team and product: from the call's own attributes, else the first matching attribution rule,
    else the API key's defaults; what is left stays unattributed (never dropped)."""
    org_id = api_key.organization_id
    team_id = tenancy_cache.team_id(org_id, call.team) if call.team else None
    product_id = tenancy_cache.product_id(org_id, call.product, team_id) if call.product else None
    team_id, product_id, source, call.feature = attribution_for(
        rule_cache.rules_for(org_id), call, api_key, team_id, product_id
    )
    return Attribution(team_id, product_id, source)


def span_owners(api_key: ApiKey, spans: Sequence[SpanView], calls: list[tuple[SpanRef, Owner]]) -> list[Owner]:
    """Team and product of each context span: as a call's (its own or its resource's observatory.* attributes, the
    attribution rules, the key's defaults); with no team from those, the team the export's calls around it agree on
    (ingest.span_owners). A span left without a team is shown to organization-wide viewers only."""
    owners, refs, unowned = [], [], []
    for index, span in enumerate(spans):
        fields = CallFields(trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id,
                            start_time=datetime.fromtimestamp(span.start_ns / 1e9, UTC), duration_ms=0.0,
                            attributes=span.attributes)
        apply_attribution(fields, span)
        attribution = attribute_call(api_key, fields)
        owners.append((attribution.team_id, attribution.product_id))
        refs.append(span_ref(fields))
        if attribution.team_id is None:
            unowned.append(index)
    inherited = inherited_owners([refs[index] for index in unowned], calls)
    for index, owner in zip(unowned, inherited, strict=True):
        if owner is not None:
            owners[index] = owner
    return owners


def span_ref(call: CallFields) -> SpanRef:
    return SpanRef(call.trace_id, call.span_id, call.parent_span_id or "", call.service_name)


_copied_fields = attrgetter(*(name for name, _ in store.CALL_COPIED_FIELDS))


def call_row(org_id: int, api_key_id: int | None, c: CallFields, attribution: Attribution, cost: IngestCost) -> tuple:
    """A call's row in `store.LLMCALL` column order: the `store.CALL_SET_AT_STORE` values, then the call's own
    `store.CALL_COPIED_FIELDS`. Mappers already cap text fields at 512 characters."""
    return (
        org_id, api_key_id, c.parent_span_id or "", attribution.team_id, attribution.product_id, attribution.source,
        cost.cost_usd, cost.cost_status, cost.price_id, cost.cost_avoided_usd,
        canonical_model(c.response_model, c.request_model), *_copied_fields(c),
    )


def content_row(org_id: int, call: CallFields, cap: int) -> tuple:
    text_in, cut_in = _cap_text(call.input_content or "", cap)
    text_out, cut_out = _cap_text(call.output_content or "", cap)
    return (org_id, call.trace_id, call.span_id, call.start_time, text_in, text_out, cut_in or cut_out)


def _cap_text(text: str, cap: int) -> tuple[str, bool]:
    raw = text.encode()
    if len(raw) <= cap:
        return text, False
    return raw[:cap].decode(errors="ignore"), True


def context_row(
    org_id: int, span: SpanView, capture_content: bool = False, owner: Owner = (None, None),
    declared: frozenset[str] | None = None,
) -> tuple:
    """A trace span's row: its team and product, its first 64 attributes, and with capture off only those known
    not to be content."""
    attributes = span.attributes
    if len(attributes) > _CONTEXT_ATTRIBUTE_LIMIT:
        attributes = dict(list(attributes.items())[:_CONTEXT_ATTRIBUTE_LIMIT])
    if not capture_content:
        attributes = without_content(attributes, declared or frozenset())
    return (
        org_id, span.trace_id, span.span_id, span.parent_span_id or "", _cut(span.name), span.kind,
        datetime.fromtimestamp(span.start_ns / 1e9, UTC), max(0.0, (span.end_ns - span.start_ns) / 1e6),
        "error" if span.status_code == 2 else "ok", _cut(str(span.resource.get("service.name", ""))),
        _cut(span.scope_name), *owner, attributes,
    )


GPU_METRIC_MARKERS = ("gpu", "dcgm_fi_", "nvml", "vllm:", "sglang:", "tgi_")


def is_gpu_metric(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in GPU_METRIC_MARKERS)


def ingest_metric_points(api_key: ApiKey, decoded) -> tuple[int, str]:
    """Keep GPU and serving-engine gauges (for GPU cost); GenAI client metrics duplicate spans and are skipped."""
    rows = []
    for point in decoded.points:
        if not is_gpu_metric(point.name):
            continue
        if out_of_bounds(decoded, f"metric {point.name}: time", point.time_ns):
            continue
        series = hashlib.sha256(orjson.dumps(point.attributes, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:32]
        rows.append(MetricSample(
            organization_id=api_key.organization_id, name=point.name[:MAX_TEXT], series=series,
            time=datetime.fromtimestamp(point.time_ns / 1e9, UTC), value=point.value, attributes=point.attributes,
        ))
    if rows:
        MetricSample.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    message = "; ".join(decoded.errors[:5])
    return decoded.rejected, (f"{decoded.rejected} data point(s) rejected: {message}" if decoded.rejected else "")


def ingest_log_records(api_key: ApiKey, decoded) -> tuple[int, str]:
    """Prompt/completion content carried by log events (older instrumentations); kept only with capture on."""
    organization = api_key.organization
    rows = []
    if organization.capture_content:
        for record in decoded.records:
            fragment = map_log_record(record)
            if fragment is None or not fragment.trace_id or not fragment.span_id:
                continue
            if out_of_bounds(decoded, "log record: time", record.time_ns):
                continue
            when = datetime.fromtimestamp(record.time_ns / 1e9, UTC)
            text_in, cut_in = _cap_text(fragment.input_content or "", organization.content_max_bytes)
            text_out, cut_out = _cap_text(fragment.output_content or "", organization.content_max_bytes)
            rows.append((organization.pk, fragment.trace_id, fragment.span_id, when, text_in, text_out, cut_in or cut_out))
    if rows:
        store.write_batch([], [], rows)
    message = "; ".join(decoded.errors[:5])
    return decoded.rejected, (f"{decoded.rejected} log record(s) rejected: {message}" if decoded.rejected else "")


def out_of_bounds(decoded, label: str, time_ns: int) -> bool:
    """Counts a log record or metric point outside ingest's time bounds (ingest.time_bounds) as rejected."""
    problem = time_ns_problem(time_ns)
    if problem:
        decoded.rejected += 1
        decoded.errors.append(f"{label} {problem}")
    return problem is not None
