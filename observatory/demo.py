"""Demo traffic: two weeks of realistic model calls for several teams, sent through the real OTLP endpoint.

The spans look like the Observatory SDK's (GenAI semantic conventions plus observatory.* attribution),
with errors, streaming, provider prompt-cache reads and app-cache hits, so every page has something to show.
"""

from __future__ import annotations

import gzip
import random
import secrets
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


@dataclass(frozen=True)
class Workload:
    team: str
    product: str
    feature: str
    provider: str
    model: str
    response_model: str
    operation: str
    calls_per_hour: float
    input_tokens: tuple[int, int]
    output_tokens: tuple[int, int]
    latency_ms: float
    cached_share: float = 0.0
    stream_share: float = 0.0
    error_rate: float = 0.01
    app_cache_share: float = 0.0
    environment: str = "production"


WORKLOADS = (
    Workload("search", "web-search", "query-rewrite", "openai", "gpt-4o", "gpt-4o-2024-08-06", "chat", 14, (300, 900),
             (20, 60), 650, cached_share=0.1, error_rate=0.01),
    Workload("search", "answers", "answer", "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "chat", 9,
             (2500, 9000), (250, 700), 4200, cached_share=0.55, stream_share=0.9, error_rate=0.02),
    Workload("search", "web-search", "embed", "openai", "text-embedding-3-small", "text-embedding-3-small", "embeddings", 40,
             (20, 400), (0, 0), 90, error_rate=0.002),
    Workload("support", "helpdesk-bot", "reply", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chat", 22, (1200, 4000),
             (120, 400), 1400, cached_share=0.4, stream_share=0.7, error_rate=0.015, app_cache_share=0.12),
    Workload("support", "helpdesk-bot", "triage", "anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", "chat", 10,
             (400, 1200), (10, 40), 700, error_rate=0.01),
    Workload("growth", "email-writer", "draft", "openai", "gpt-4.1", "gpt-4.1-2025-04-14", "chat", 5, (800, 2500), (300, 900),
             5200, stream_share=0.3, error_rate=0.03),
    Workload("growth", "email-writer", "nightly-batch", "openai", "gpt-4o", "gpt-4o-2024-08-06", "chat", 3, (1500, 3000),
             (200, 500), 3000, error_rate=0.01, environment="batch"),
    Workload("platform", "internal-tools", "code-review", "openai", "o4-mini", "o4-mini-2025-04-16", "chat", 4, (3000, 12000),
             (800, 3000), 9000, error_rate=0.02),
)
ERRORS = (("RateLimitError", 429, 0.6), ("InternalServerError", 500, 0.25), ("APITimeoutError", None, 0.15))


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _span(w: Workload, start: datetime, rng: random.Random) -> Span:
    input_tokens = rng.randint(*w.input_tokens)
    output_tokens = rng.randint(*w.output_tokens) if w.output_tokens[1] else 0
    cached = int(input_tokens * rng.uniform(0.5, 0.9)) if rng.random() < w.cached_share else 0
    streaming = rng.random() < w.stream_share
    duration_ms = rng.lognormvariate(0, 0.45) * w.latency_ms * (1 + output_tokens / 2000)
    failed = rng.random() < w.error_rate
    app_cache = not failed and rng.random() < w.app_cache_share
    attrs = {
        "gen_ai.provider.name": w.provider, "gen_ai.operation.name": w.operation, "gen_ai.request.model": w.model,
        "observatory.team": w.team, "observatory.product": w.product, "observatory.feature": w.feature,
        "observatory.environment": w.environment, "gen_ai.request.stream": streaming,
        "user.id": f"user-{rng.randint(1, 400)}", "session.id": f"session-{rng.randint(1, 3000)}",
        "observatory.prompt_prefix_hash": f"{hash((w.team, w.feature, rng.randint(0, 3))) & 0xFFFFFFFFFFFF:012x}",
        "observatory.request_hash": (
            f"{rng.getrandbits(64):016x}" if rng.random() > 0.05 else f"{w.feature}-dup-{rng.randint(0, 20)}"
        ),
    }
    status = Status(code=Status.STATUS_CODE_OK)
    if failed:
        error, http_status, _ = rng.choices(ERRORS, weights=[e[2] for e in ERRORS])[0]
        attrs["error.type"] = error
        if http_status:
            attrs["http.response.status_code"] = http_status
        status = Status(code=Status.STATUS_CODE_ERROR, message=f"{error}")
        duration_ms *= 0.2
    else:
        attrs["gen_ai.response.model"] = w.response_model
        attrs["gen_ai.usage.input_tokens"] = input_tokens
        attrs["gen_ai.usage.output_tokens"] = output_tokens
        if cached:
            attrs["gen_ai.usage.cache_read.input_tokens"] = cached
        if w.model.startswith("o4") and output_tokens:
            attrs["gen_ai.usage.reasoning.output_tokens"] = int(output_tokens * 0.6)
        if streaming:
            attrs["gen_ai.response.time_to_first_chunk"] = round(duration_ms * rng.uniform(0.08, 0.25) / 1000, 4)
        attrs["gen_ai.response.finish_reasons"] = "stop"
        if app_cache:
            attrs["observatory.app_cache_hit"] = True
            duration_ms = rng.uniform(2, 8)
    start_ns = int(start.timestamp() * 1e9)
    return Span(
        trace_id=secrets.token_bytes(16), span_id=secrets.token_bytes(8), name=f"{w.operation} {w.model}",
        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start_ns, end_time_unix_nano=start_ns + int(duration_ms * 1e6),
        attributes=[_kv(k, v) for k, v in attrs.items()], status=status,
    )


def generate_spans(days: int = 14, now: datetime | None = None, seed: int = 7) -> list[Span]:
    """Spans for the past `days`, busier on weekday working hours (UTC), with a mild upward trend."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    spans = []
    hour = start
    while hour < now:
        daytime = 1.0 if 8 <= hour.hour < 19 else 0.25
        weekday = 1.0 if hour.weekday() < 5 else 0.4
        trend = 0.8 + 0.4 * (hour - start) / (now - start)
        for w in WORKLOADS:
            shape = daytime * weekday if w.environment != "batch" else (3.0 if hour.hour in (1, 2) else 0.0)
            rate = w.calls_per_hour * trend * shape
            for _ in range(int(rng.expovariate(1.0) * rate * 0.5 + rate * 0.5)):
                moment = hour + timedelta(seconds=rng.uniform(0, 3600))
                if moment < now:
                    spans.append(_span(w, moment, rng))
        hour += timedelta(hours=1)
    return spans


def _post(endpoint: str, api_key: str, spans: list[Span]) -> None:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend([_kv("service.name", "demo-app"), _kv("deployment.environment.name", "production")])
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "observatory_sdk"
    scope_spans.scope.version = "demo"
    scope_spans.spans.extend(spans)
    body = gzip.compress(request.SerializeToString())
    http = urllib.request.Request(  # noqa: S310 (our own endpoint)
        f"{endpoint}/v1/traces", data=body, method="POST",
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Authorization": f"Bearer {api_key}"},
    )
    for attempt in range(5):
        try:
            with urllib.request.urlopen(http, timeout=30) as response:  # noqa: S310
                response.read()
                return
        except OSError:
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))


def run_demo(endpoint: str, days: int = 14) -> str:
    """Create a demo key (and the days' partitions), then post the demo spans in batches of 500."""
    from ingest.partitions import ensure_partitions
    from observatory.services import create_api_key, get_or_create_organization

    ensure_partitions(days_back=days + 1)
    org = get_or_create_organization("Default organization", "default")
    key = create_api_key(org, "Demo traffic").plaintext  # every workload names its team, as typed
    spans = generate_spans(days)
    for offset in range(0, len(spans), 500):
        _post(endpoint, key, spans[offset:offset + 500])
    budgets = add_demo_budgets(org)
    return f"{len(spans):,} calls over {days} days for {len({w.team for w in WORKLOADS})} teams, {budgets} budgets"


DEMO_BUDGETS = (  # (name, team slug or None, period, USD): the overview and the budgets page have something to show
    ("Organization monthly", None, "month", "150.00"),
    ("Search monthly", "search", "month", "60.00"),
    ("Growth daily", "growth", "day", "2.00"),
)


def add_demo_budgets(org) -> int:
    """The demo's budgets (once: an existing budget of the same name is left as it is). No channels: alerts only
    appear in the alert history."""
    from billing.models import Budget
    from observatory.models import Team

    made = 0
    for name, team_slug, period, amount in DEMO_BUDGETS:
        team = Team.objects.filter(organization=org, slug=team_slug).first() if team_slug else None
        _, created = Budget.objects.get_or_create(organization=org, name=name, defaults={
            "team": team, "period": period, "amount_usd": amount})
        made += created
    return made
