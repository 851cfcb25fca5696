"""The latency page (/latency/): p50/p95/p99 and TTFT from the rollups' histograms, by model and product,
over time, and the slowest calls."""

import csv
import io

import pytest
from django.utils import timezone

from billing.queries import exact_percentiles
from observatory.access import Scope
from observatory.dashboard.filters import preset_period
from tests.observatory.test_dashboard_seed import ADS_MODEL, Seed, leaks_ads, seed, shown


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def test_it_requires_login(client, data):
    assert client.get("/latency/").status_code == 302


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/latency/").status_code == 405


def test_p99_is_within_2_5_percent_of_the_exact_nearest_rank_value(client, data):
    period = preset_period("7d", timezone.now())
    [exact_p50, exact_p99] = exact_percentiles(Scope(data.org.id, (data.search.id,)), period.start, period.end,
                                               quantiles=(0.5, 0.99))
    response = data.login(client, "search_viewer").get("/latency/?range=7d")
    assert response.status_code == 200
    shown_p99 = float(shown(response, "p99").replace(",", ""))
    assert abs(shown_p99 - exact_p99) <= 0.025 * exact_p99 + 0.5  # + rounding to whole milliseconds
    assert abs(response.context["summary"]["p50"] - exact_p50) <= 0.025 * exact_p50


def test_ttft_percentiles_come_from_streaming_calls_only(client, data):
    response = data.login(client, "search_viewer").get("/latency/?range=7d")
    summary = response.context["summary"]
    assert summary["count"] == 43
    assert summary["ttft_count"] == 10
    ttfts = sorted(call.ttft_ms for call in data.search_calls if call.ttft_ms is not None)
    assert abs(summary["ttft_p99"] - ttfts[-1]) <= 0.025 * ttfts[-1]


def test_it_breaks_latency_down_by_model_and_product(client, data):
    response = data.login(client, "search_viewer").get("/latency/?range=7d")
    assert {row["model"]: row["count"] for row in response.context["by_model"]} == {"gpt-4o-2024-08-06": 40, "mystery-llm": 3}
    [answers] = response.context["by_product"]
    assert (answers["label"], answers["count"]) == ("Answers", 43)
    chart = response.context["chart"]
    assert [d["label"] for d in chart["datasets"]] == ["p50", "p95", "p99", "TTFT p95"]
    assert (chart["scale"], chart["axis"]) == ("log", "milliseconds (log scale)")  # p50 not squashed under p99
    assert len(chart["labels"]) == 7


def test_the_slowest_calls_are_the_users_own(client, data):
    response = data.login(client, "search_viewer").get("/latency/?range=7d")
    slowest = response.context["slowest"]
    assert slowest[0].duration_ms == max(call.duration_ms for call in data.search_calls)
    assert {call.team_id for call in slowest} == {data.search.id}
    assert leaks_ads(response.content) == []
    admin = data.login(client, "admin").get("/latency/?range=7d")
    assert admin.context["slowest"][0].request_model == ADS_MODEL


def test_it_downloads_latency_by_model(client, data):
    response = data.login(client, "search_viewer").get("/latency/?range=7d&format=csv")
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert [(row["model"], row["calls"]) for row in rows] == [("gpt-4o-2024-08-06", "40"), ("mystery-llm", "3")]
    assert float(rows[1]["p99_ms"]) == pytest.approx(900, rel=0.025)
    assert rows[1]["ttft_p50_ms"] == ""


def test_the_last_24_hours_are_drawn_per_hour(client, data):
    response = data.login(client, "search_viewer").get("/latency/?range=24h")
    assert len(response.context["chart"]["labels"]) == 24
    assert b"Duration percentiles per hour" in response.content


def test_the_product_table_shows_the_busiest_twenty_then_all_on_request(client, data):
    from datetime import timedelta
    from decimal import Decimal

    from billing.rollups import rollup_pending
    from ingest.models import LLMCall
    from observatory.models import Product

    now = timezone.now()
    calls = []
    for i in range(22):  # product i gets i + 1 calls, on top of the seed's own product
        product = Product.objects.create(organization=data.org, team=data.search, name=f"Extra {i:02d}", slug=f"extra-{i}")
        calls += [LLMCall(organization=data.org, trace_id=f"{i + 1:08x}{n:024x}", span_id=f"{n + 1:016x}",
                          start_time=now - timedelta(days=2, minutes=n), duration_ms=100.0 + i, provider="openai",
                          operation="chat", request_model="gpt-4o-2024-08-06", team=data.search, product=product,
                          cost_usd=Decimal("0.001"), cost_status="priced") for n in range(i + 1)]
    LLMCall.objects.bulk_create(calls)
    rollup_pending()
    page = data.login(client, "admin").get("/latency/?range=7d")
    rows = page.context["by_product"]
    assert len(rows) == 20 and page.context["products"] > 20
    assert [row["count"] for row in rows] == sorted((row["count"] for row in rows), reverse=True)
    assert "Extra 21" in [row["label"] for row in rows] and "Extra 00" not in [row["label"] for row in rows]
    assert f"the 20 busiest of {page.context['products']} products".encode() in page.content
    assert b'href="?range=7d&amp;products=all"' in page.content
    every = data.login(client, "admin").get("/latency/?range=7d&products=all")
    assert len(every.context["by_product"]) == every.context["products"] == page.context["products"]
    extra = {row["label"]: row["count"] for row in every.context["by_product"] if row["label"].startswith("Extra")}
    assert extra == {f"Extra {i:02d}": i + 1 for i in range(22)}
    shown_twice = {row["label"]: row["p50"] for row in rows}
    assert all(shown_twice[row["label"]] == row["p50"] for row in every.context["by_product"] if row["label"] in shown_twice)
