"""The prices page (/prices/): the catalog in force (search, pages), negotiated rates, and the models the
user's calls used that have no price."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import Price, PriceOverride
from observatory.dashboard.prices import per_million
from tests.observatory.test_dashboard_seed import ADS_MODEL, Seed, leaks_ads, seed


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


@pytest.fixture
def catalog(data):
    """Hand-made prices in place of the catalog migrate loaded: 60 test models and an expired one, beside the
    seed's gpt-4o."""
    Price.objects.exclude(pk=data.price.pk).delete()
    Price.objects.bulk_create([
        Price(provider="openai", model=f"gpt-test-{i:02d}", key=f"gpt-test-{i:02d}", input=Decimal("0.000001"),
              output=Decimal("0.000002")) for i in range(60)
    ])
    Price.objects.create(provider="anthropic", model="claude-old", key="claude-old", input=Decimal("0.000003"),
                         output=Decimal("0.000015"), effective_to=datetime(2025, 1, 1, tzinfo=UTC))


def test_it_requires_login(client, data):
    assert client.get("/prices/").status_code == 302


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/prices/").status_code == 405


def test_it_searches_the_prices_in_force_page_by_page(client, data, catalog):
    client = data.login(client, "search_viewer")
    response = client.get("/prices/?q=gpt test")
    page = response.context["page"]
    assert (page.paginator.count, len(page.object_list), page.paginator.num_pages) == (60, 50, 2)
    assert [row["input"] for row in response.context["rows"]][:1] == ["$1.00"]
    assert len(client.get("/prices/?q=gpt test&page=2").context["page"].object_list) == 10
    assert client.get("/prices/?q=claude-old").context["page"].paginator.count == 0  # no longer in force
    assert client.get("/prices/?q=gpt-4o").context["page"].paginator.count == 1


def test_it_lists_the_models_needing_a_price_from_the_users_calls(client, data):
    response = data.login(client, "search_viewer").get("/prices/?range=7d")
    assert [(m["model_name"], m["calls"]) for m in response.context["unknown_models"]] == [("mystery-llm", 3)]
    assert leaks_ads(response.content) == []
    admin = data.login(client, "admin").get("/prices/?range=7d")
    assert {m["model_name"]: m["calls"] for m in admin.context["unknown_models"]} == {"mystery-llm": 3, ADS_MODEL: 1}


def test_it_lists_the_organizations_negotiated_rates(client, data):
    PriceOverride.objects.create(organization=data.org, provider="openai", model_pattern="gpt-4o*",
                                 discount_percent=Decimal("12.5"), note="Enterprise agreement")
    PriceOverride.objects.create(organization=data.org, provider="anthropic", model_pattern="claude-*",
                                 input=Decimal("0.0000025"), output=Decimal("0.00001"))
    response = data.login(client, "search_viewer").get("/prices/")
    assert b"12.5% off" in response.content
    assert b"Enterprise agreement" in response.content
    assert b"input $2.50 / 1M, output $10.00 / 1M" in response.content


def test_it_downloads_the_search_results(client, data, catalog):
    response = data.login(client, "search_viewer").get("/prices/?q=gpt-test-0&format=csv")
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert [row["key"] for row in rows] == [f"gpt-test-0{i}" for i in range(10)]
    assert (rows[0]["input_per_1m"], rows[0]["output_per_1m"]) == ("$1.00", "$2.00")


def test_prices_per_million_tokens_keep_their_precision():
    assert per_million(Decimal("0.00000015")) == "$0.15"
    assert per_million(Decimal("0.000000075")) == "$0.075"
    assert per_million(Decimal("0.00006")) == "$60.00"
    assert per_million(None) == "—"


def test_the_models_the_calls_used_come_first_then_the_rest_by_name(client, data):
    response = data.login(client, "search_viewer").get("/prices/", {"range": "7d"})
    rows = [row["price"] for row in response.context["rows"]]
    used = [(p.provider, p.key, p.calls_in_range) for p in rows if p.calls_in_range]
    assert ("openai", "gpt-4o", 40) in used  # Search's 40 gpt-4o calls (snapshot gpt-4o-2024-08-06)
    assert {key for _, key, _ in used} >= {"gpt-4o", "gpt-4o-2024-08-06"}
    assert all(calls == 40 for _, _, calls in used)  # not the Ads team's model, nor the unattributed gpt-4o-mini
    assert [p.calls_in_range for p in rows[:len(used)]] == [40] * len(used)
    rest = [p.model for p in rows[len(used):]]
    assert rest == sorted(rest)

    admin = data.login(client, "admin").get("/prices/", {"range": "7d"}).context["rows"]
    ranked = [(r["price"].key, r["price"].calls_in_range) for r in admin if r["price"].calls_in_range]
    assert ranked[0][1] == 40 and ("gpt-4o-mini", 5) in ranked  # the unattributed calls count for an admin
    assert [calls for _, calls in ranked] == sorted((calls for _, calls in ranked), reverse=True)


def test_a_catalog_price_shows_no_placeholder_date_and_an_imported_one_its_date(client, data):
    Price.objects.create(provider="openai", model="gpt-new", key="gpt-new", input=Decimal("0.000001"),
                         output=Decimal("0.000002"), source="import", effective_from=datetime(2026, 10, 5, tzinfo=UTC))
    client = data.login(client, "search_viewer")
    page = client.get("/prices/", {"q": "gpt"}).content.decode()
    assert "Jan 1, 2000" not in page and "catalog</span>" in page
    assert "Oct 5, 2026" in client.get("/prices/", {"q": "gpt-new"}).content.decode()
    rows = list(csv.DictReader(io.StringIO(client.get("/prices/", {"q": "gpt-4o", "format": "csv"}).getvalue().decode())))
    assert {row["effective_from"] for row in rows} == {""} and {row["source"] for row in rows} == {"catalog"}
    new = list(csv.DictReader(io.StringIO(client.get("/prices/", {"q": "gpt-new", "format": "csv"}).getvalue().decode())))
    assert [(row["effective_from"], row["source"]) for row in new] == [("2026-10-05", "import")]
