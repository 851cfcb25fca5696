"""The calls explorer (/calls/) and a call's page (/calls/<trace>/<span>/): filters, keyset pages, the trace
as a tree, the price breakdown, content."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.rollups import rollup_pending
from ingest.models import LLMCall, TraceSpan
from observatory.dashboard.calls import trace_tree
from tests.observatory.test_dashboard_seed import Seed, leaks_ads, seed


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def _url(call: LLMCall) -> str:
    return f"/calls/{call.trace_id}/{call.span_id}/"


def test_it_requires_login(client, data):
    assert client.get("/calls/").status_code == 302
    assert client.get(_url(data.traced_call)).status_code == 302


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/calls/").status_code == 405
    assert data.login(client, "admin").post(_url(data.traced_call)).status_code == 405


def test_it_lists_only_the_users_calls_newest_first(client, data):
    response = data.login(client, "search_viewer").get("/calls/?range=7d")
    calls = response.context["page"].calls
    assert len(calls) == 43
    assert {call.team_id for call in calls} == {data.search.id}
    assert [c.start_time for c in calls] == sorted((c.start_time for c in calls), reverse=True)
    assert response.context["page"].next_cursor is None
    assert leaks_ads(response.content) == []


@pytest.mark.parametrize(("query", "count"), [
    ("model=mystery-llm", 3), ("model=gpt-4o", 40), ("model=gpt-4o-2024-08-06", 40), ("status=error", 4),
    ("user=user-1", 8), ("session=session-0", 6), ("team=search&product=answers", 43), ("team=ads", 0),
    ("product=ads-ranker", 0),
])
def test_it_filters(client, data, query, count):
    response = data.login(client, "search_viewer").get(f"/calls/?range=7d&{query}")
    assert len(response.context["page"].calls) == count


def test_it_pages_with_a_cursor_without_gaps_or_repeats(client, data):
    client = data.login(client, "admin")
    first = client.get("/calls/?range=7d")
    assert len(first.context["page"].calls) == 50
    cursor = first.context["page"].next_cursor
    assert f"cursor={cursor}".replace(":", "%3A").replace("+", "%2B").encode() in first.content
    second = client.get("/calls/", {"range": "7d", "cursor": cursor})
    assert second.context["page"].next_cursor is None
    ids = [c.id for c in first.context["page"].calls + second.context["page"].calls]
    assert len(ids) == len(set(ids)) == LLMCall.objects.count() == 68


def test_calls_at_the_same_moment_are_paged_by_id(client, data):
    moment = datetime(2026, 11, 20, 12, tzinfo=UTC)
    LLMCall.objects.bulk_create([
        LLMCall(organization=data.org, trace_id=f"{i:032x}", span_id=f"{i:016x}", start_time=moment, team=data.search,
                request_model="tie", cost_status="priced")
        for i in range(1000, 1060)
    ])
    client = data.login(client, "search_viewer")
    query = {"start": "2026-11-20", "end": "2026-11-20", "model": "tie"}
    first = client.get("/calls/", query)
    second = client.get("/calls/", {**query, "cursor": first.context["page"].next_cursor})
    assert len({c.id for c in first.context["page"].calls} | {c.id for c in second.context["page"].calls}) == 60


def test_a_garbled_cursor_shows_the_first_page(client, data):
    response = data.login(client, "search_viewer").get("/calls/?range=7d&cursor=garbage")
    assert len(response.context["page"].calls) == 43


def test_it_downloads_the_filtered_calls(client, data):
    response = data.login(client, "search_viewer").get("/calls/?range=7d&status=error&format=csv")
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    failed = {c.span_id: c for c in data.search_calls if c.status == "error"}
    assert {row["span_id"] for row in rows} == set(failed)
    for row in rows:
        assert Decimal(row["cost_usd"]) == failed[row["span_id"]].cost_usd.quantize(Decimal("0.000001"))
        assert row["error_type"] == "RateLimitError"


def test_a_call_shows_its_trace_as_a_tree(client, data):
    response = data.login(client, "search_viewer").get(_url(data.traced_call))
    assert response.status_code == 200
    trace = response.context["trace"]
    assert [(node.name, node.depth) for node in trace] == [
        ("POST /answer", 0), ("SELECT documents", 1), ("chat gpt-4o-2024-08-06", 1),
    ]
    assert trace[0].offset_pct == 0 and trace[0].width_pct == 100


def test_a_call_shows_how_its_price_adds_up(client, data):
    call = data.search_calls[2]  # 8,000 cached of 20,200 input tokens, 1,020 output
    response = data.login(client, "search_viewer").get(_url(call))
    price = response.context["price"]
    assert [(line.token_class, line.tokens, line.per_million) for line in price.lines] == [
        ("input", 12_200, "$2.50"), ("cached input read", 8_000, "$1.25"), ("output", 1_020, "$10.00"),
    ]
    assert price.breakdown.total == call.cost_usd
    assert response.context["price_matches"]
    assert f"${call.cost_usd:.6f}".encode() in response.content


def test_a_call_of_an_unknown_model_asks_for_a_price(client, data):
    response = data.login(client, "search_viewer").get(_url(data.unknown_calls[0]))
    assert b"Unknown model \xe2\x80\x94 add a price." in response.content
    assert response.context["price"] is None


def test_an_app_cache_hit_shows_the_cost_avoided(client, data):
    response = data.login(client, "search_viewer").get(_url(data.search_calls[5]))
    assert b"the total above is the cost avoided" in response.content


def test_content_is_shown_only_when_captured(client, data):
    response = data.login(client, "search_viewer").get(_url(data.traced_call))
    assert b"What is our refund policy?" in response.content
    response = data.login(client, "search_viewer").get(_url(data.search_calls[1]))
    assert b"<h2>Content</h2>" not in response.content


def test_another_teams_call_is_a_404(client, data):
    assert data.login(client, "search_viewer").get(_url(data.ads_calls[0])).status_code == 404
    assert data.login(client, "search_viewer").get(_url(data.unattributed_calls[0])).status_code == 404
    assert data.login(client, "admin").get(_url(data.ads_calls[0])).status_code == 200


def test_another_teams_calls_in_the_same_trace_are_left_out(client, data):
    LLMCall.objects.filter(span_id=data.ads_calls[0].span_id).update(trace_id=data.traced_call.trace_id)
    response = data.login(client, "search_viewer").get(_url(data.traced_call))
    assert len(response.context["trace"]) == 3
    assert leaks_ads(response.content) == []


def test_the_tree_keeps_orphans_as_roots_and_survives_cycles():
    start = datetime(2026, 11, 20, tzinfo=UTC)

    def span(span_id, parent, offset_ms, duration_ms):
        return TraceSpan(span_id=span_id, parent_span_id=parent, name=span_id, start_time=start + timedelta(milliseconds=offset_ms),
                         duration_ms=duration_ms)

    nodes = trace_tree([span("b", "a", 10, 50), span("a", "b", 0, 100), span("c", "missing", 20, 10), span("d", "c", 25, 5)])
    assert [(n.name, n.depth) for n in nodes] == [("c", 0), ("d", 1), ("a", 0), ("b", 1)]
    assert [(n.offset_pct, n.width_pct) for n in nodes] == [(20, 10), (25, 5), (0, 100), (10, 50)]
    assert trace_tree([]) == []


def test_the_csv_defuses_spreadsheet_formulas_in_ingested_text(client, data):
    LLMCall.objects.filter(span_id=data.search_calls[1].span_id).update(end_user='=HYPERLINK("http://evil","x")')
    response = data.login(client, "search_viewer").get("/calls/?range=7d&format=csv")
    users = {row["span_id"]: row["user"] for row in csv.DictReader(io.StringIO(response.getvalue().decode()))}
    assert users[data.search_calls[1].span_id] == '\'=HYPERLINK("http://evil","x")'
    assert users[data.search_calls[2].span_id] == "user-2"


def test_the_csv_has_every_call_of_the_range_however_many(client, org, team):
    """10,050 calls (more than the 10,000 the download used to stop at) and 150 end users (the page lists 100)."""
    from django.contrib.auth import get_user_model

    from observatory.models import Membership, Role

    start = datetime.now(UTC) - timedelta(hours=30)
    LLMCall.objects.bulk_create([
        LLMCall(organization=org, team=team, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", operation="chat",
                start_time=start + timedelta(seconds=i), provider="openai", request_model="gpt-4o-mini",
                input_tokens=10, output_tokens=1, duration_ms=100.0, cost_usd=Decimal("0.001"), cost_status="priced",
                end_user=f"user-{i % 150}")
        for i in range(10_050)
    ], batch_size=2_000)
    admin = get_user_model().objects.create_user("ada")
    Membership.objects.create(user=admin, organization=org, role=Role.ADMIN)
    client.force_login(admin)

    download = client.get("/calls/", {"range": "7d", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(rows) == 10_050
    assert len({row["span_id"] for row in rows}) == 10_050
    assert sum(Decimal(row["cost_usd"]) for row in rows) == Decimal("10.050")

    users = client.get("/users/", {"range": "7d", "format": "csv"})
    user_rows = list(csv.DictReader(io.StringIO(b"".join(users.streaming_content).decode())))
    assert len(user_rows) == 150 and sum(int(row["calls"]) for row in user_rows) == 10_050
    rollup_pending()  # the page reads whole days from the daily rollups, as the minute job leaves them
    assert len(client.get("/users/", {"range": "7d"}).context["rows"]) == 100
