"""A context span's team, as ingest resolves it through the OTLP endpoint: its own attribution, the key's default
team, an attribution rule, else the team its export's calls agree on (ingest.span_owners).

The trace: the search service's request (root `POST /search`) makes a Search call and asks the ads service
(`GET /auction`), whose request (`POST /auction`) makes an Ads call and a database query (`ads-secret-query`).
"""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from billing.models import AttributionRule
from ingest.models import LLMCall, TraceSpan
from observatory.services import create_api_key

NOW_NS = 1_795_000_000_000_000_000  # 2026-11-18
TRACE_ID = bytes.fromhex("5eed" * 8)
ADS_SECRET_QUERY = "ads-secret-query"
ADS_SECRET_STATEMENT = "SELECT bid FROM ads_secret_bids WHERE advertiser = 'globex'"
ADS_MODEL = "ads-secret-model"


def span_id(name: str) -> bytes:
    return {"search-root": 1, "search-call": 2, "search-hop": 3, "ads-root": 4, "ads-call": 5, "ads-db": 6}[name].to_bytes(8, "big")


def hex_id(name: str) -> str:
    return span_id(name).hex()


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _chat(model: str, **extra) -> dict:
    return {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 85, **extra}


# service → [(span, parent, name, scope, attributes, start offset in ms)]
SERVICES = {
    "search": [
        ("search-root", None, "POST /search", "opentelemetry.instrumentation.fastapi", {"http.route": "/search"}, 0),
        ("search-call", "search-root", "chat gpt-4o-mini", "opentelemetry.instrumentation.openai_v2",
         _chat("gpt-4o-mini"), 10),
        ("search-hop", "search-root", "GET /auction", "opentelemetry.instrumentation.httpx", {"http.method": "GET"}, 20),
    ],
    "ads": [
        ("ads-root", "search-hop", "POST /auction", "opentelemetry.instrumentation.fastapi", {"http.route": "/auction"}, 25),
        ("ads-call", "ads-root", f"chat {ADS_MODEL}", "opentelemetry.instrumentation.openai_v2", _chat(ADS_MODEL), 30),
        ("ads-db", "ads-root", ADS_SECRET_QUERY, "opentelemetry.instrumentation.psycopg",
         {"db.system": "postgresql", "db.statement": ADS_SECRET_STATEMENT}, 40),
    ],
}


def export(services: dict[str, dict[str, str]]) -> bytes:
    """One OTLP export of the trace's spans of `services` ({service: extra attributes of its calls})."""
    request = ExportTraceServiceRequest()
    for service, call_attributes in services.items():
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.append(_kv("service.name", service))
        for name, parent, title, scope, attributes, offset_ms in SERVICES[service]:
            if "gen_ai.operation.name" in attributes:
                attributes = {**attributes, **call_attributes}
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = scope
            start = NOW_NS + offset_ms * 1_000_000
            scope_spans.spans.append(Span(
                trace_id=TRACE_ID, span_id=span_id(name), parent_span_id=span_id(parent) if parent else b"",
                name=title, kind=2, start_time_unix_nano=start, end_time_unix_nano=start + 50_000_000,
                attributes=[_kv(key, value) for key, value in attributes.items()],
            ))
    return request.SerializeToString()


def post(client, key, body: bytes):
    response = client.post("/v1/traces", data=body, content_type="application/x-protobuf",
                           HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 200, response.content
    return response


def ingest_with_team_keys(client, org, search, ads) -> None:
    """Each service exports its own spans with its team's key."""
    post(client, create_api_key(org, "Search key", team=search), export({"search": {}}))
    post(client, create_api_key(org, "Ads key", team=ads), export({"ads": {}}))


def ingest_with_call_attributes(client, org, search, ads) -> None:
    """One export of both services (a Collector's) with an organization key; only the calls name their team."""
    key = create_api_key(org, "Collector key")
    post(client, key, export({"search": {"observatory.team": search.slug}, "ads": {"observatory.team": ads.slug}}))


def span_teams() -> dict[str, str | None]:
    by_id = {hex_id(name): name for spans in SERVICES.values() for name, *_ in spans}
    rows = [*TraceSpan.objects.select_related("team"), *LLMCall.objects.select_related("team")]
    return {by_id[row.span_id]: row.team.slug if row.team else None for row in rows}


EVERY_SPAN_OF_ITS_SERVICE = {"search-root": "search", "search-call": "search", "search-hop": "search",
                             "ads-root": "ads", "ads-call": "ads", "ads-db": "ads"}


@pytest.mark.django_db
def test_spans_take_their_keys_team(client, org, team, other_team):
    ingest_with_team_keys(client, org, team, other_team)
    assert span_teams() == EVERY_SPAN_OF_ITS_SERVICE


@pytest.mark.django_db
def test_spans_inherit_the_team_of_their_services_calls(client, org, team, other_team):
    ingest_with_call_attributes(client, org, team, other_team)
    assert span_teams() == EVERY_SPAN_OF_ITS_SERVICE


@pytest.mark.django_db
def test_a_span_without_a_service_over_two_teams_calls_gets_no_team(client, org, team, other_team):
    key = create_api_key(org, "Collector key")
    body = ExportTraceServiceRequest.FromString(export({"search": {"observatory.team": team.slug},
                                                        "ads": {"observatory.team": other_team.slug}}))
    for resource_spans in body.resource_spans:
        del resource_spans.resource.attributes[:]  # no service names: only ancestry tells
    post(client, key, body.SerializeToString())
    teams = span_teams()
    assert (teams["search-root"], teams["search-hop"], teams["ads-root"]) == (None, "ads", "ads")
    assert (teams["ads-db"], teams["search-call"], teams["ads-call"]) == (None, "search", "ads")


@pytest.mark.django_db
def test_a_spans_own_team_attribute_and_rules_come_first(client, org, team, other_team):
    AttributionRule.objects.create(organization=org, field="attribute", attribute_key="db.system", pattern="postgresql",
                                   team=other_team)
    key = create_api_key(org, "Collector key")
    body = ExportTraceServiceRequest.FromString(export({"search": {"observatory.team": team.slug}}))
    root = body.resource_spans[0].scope_spans[0].spans[0]
    root.attributes.append(_kv("observatory.team", other_team.slug))
    post(client, key, body.SerializeToString())
    post(client, key, export({"ads": {}}))
    teams = span_teams()
    assert (teams["search-root"], teams["search-hop"]) == ("ads", "search")
    assert (teams["ads-db"], teams["ads-root"], teams["ads-call"]) == ("ads", None, None)


@pytest.mark.django_db
def test_a_replayed_export_keeps_one_span_each(client, org, team, other_team):
    ingest_with_team_keys(client, org, team, other_team)
    ingest_with_team_keys(client, org, team, other_team)
    assert TraceSpan.objects.count() == 4
    assert span_teams() == EVERY_SPAN_OF_ITS_SERVICE
