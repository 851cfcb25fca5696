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
