"""One time range for every page: one default, the user's last choice remembered, and every link that leaves a
page keeping the range, the organization and the calls' filters."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.rollups import rollup_pending
from ingest.models import LLMCall
from observatory.dashboard.filters import DEFAULT_RANGE
from tests.observatory.test_dashboard_seed import Seed, seed

PAGES = ("/", "/teams/search/", "/models/", "/latency/", "/caching/", "/errors/", "/users/", "/calls/", "/prices/",
         "/gpu/", "/what-if/")


@pytest.fixture
def data(org, team, other_team) -> Seed:
    """The seed's calls (all in the last 3 days) and 6 more of Search's from 12 days ago: in 30 days, not in 7."""
    data = seed(org, team, other_team)
    old = timezone.now() - timedelta(days=12)
    LLMCall.objects.bulk_create([
        LLMCall(organization=org, team=team, product=data.answers, trace_id=f"{900 + i:032x}", span_id=f"{900 + i:016x}",
                operation="chat", provider="openai", request_model="gpt-4o", start_time=old + timedelta(minutes=i),
                input_tokens=1_000, output_tokens=100, duration_ms=800.0, cost_usd=Decimal("0.50"),
                cost_status="priced", end_user="user-9")
        for i in range(6)
    ])
    rollup_pending()
    return data


def calls_shown(response) -> int:
    """The number of calls a page says the range has."""
    context = response.context
    if "report" in context:
        return context["report"].total["calls"]
    if "rows" in context and context["nav"] == "models":
        return sum(row["calls"] for row in context["rows"])
    if "summary" in context:
        return context["summary"]["count"]
    if "total" in context:
        return context["total"]["calls"]
    return len(context["page"].calls)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_opens_on_the_same_default_range(client, data, path):
    response = data.login(client, "search_viewer").get(path)
    assert response.status_code == 200
    assert response.context["period"].key == DEFAULT_RANGE == "30d"


def test_the_range_picked_on_one_page_holds_on_every_page_with_the_same_call_count(client, data):
    client = data.login(client, "search_viewer")
    assert calls_shown(client.get("/", {"range": "7d"})) == 43
    for path in ("/teams/search/", "/models/", "/latency/", "/caching/", "/errors/", "/calls/"):
        response = client.get(path)  # no range in the URL: the one picked on the overview
        assert response.context["period"].key == "7d", path
        assert calls_shown(response) == 43, path
    users = client.get("/users/")
    assert sum(row["calls"] for row in users.context["rows"]) == 40  # the 3 calls naming no user are not listed

    assert calls_shown(client.get("/models/", {"range": "30d"})) == 49
    for path in ("/", "/teams/search/", "/latency/", "/caching/", "/errors/", "/calls/"):
        assert calls_shown(client.get(path)) == 49, path


def test_a_custom_range_is_remembered_and_a_bad_one_is_not(client, data):
    client = data.login(client, "search_viewer")
    first = (timezone.now() - timedelta(days=13)).date()
    last = (timezone.now() - timedelta(days=11)).date()
    client.get("/errors/", {"range": "custom", "start": first.isoformat(), "end": last.isoformat()})
    response = client.get("/calls/")
    assert (response.context["period"].start.date(), response.context["period"].last_day) == (first, last)
    assert calls_shown(response) == 6

    assert client.get("/models/", {"range": "fortnight"}).context["period"].error
    assert client.get("/models/").context["period"].key == "custom"  # an unknown range is not remembered


def test_the_remembered_range_is_each_users_own(client, data):
    data.login(client, "search_viewer").get("/", {"range": "24h"})
    assert data.login(client, "admin").get("/models/").context["period"].key == DEFAULT_RANGE


def links(response) -> list[str]:
    """Every dashboard link of a page (hrefs and hx-gets, not forms: their fields make the query), as the browser
    reads them."""
    found = re.findall(r'(?:href|hx-get)="(/[^"#]*)', re.sub(r"<form[^>]*>", "", response.content.decode()))
    return [link.replace("&amp;", "&") for link in found if not link.startswith(("/static/", "/admin/", "/api/"))]


def page_links(response) -> list[str]:
    """The links to other pages: the sidebar, breadcrumbs and the tables' links to teams, products and calls."""
    return [link for link in links(response)
            if re.match(r"/(\?|teams/|products/|models/|latency/|caching/|errors/|users/|calls/|prices/|gpu/|"
                        r"recommendations/\?|what-if/|budgets/|settings/\?)", link)]


@pytest.mark.parametrize("path", ["/", "/teams/search/", "/products/answers/", "/models/", "/calls/", "/settings/",
                                  "/budgets/", "/recommendations/"])
def test_every_link_to_another_page_keeps_the_range_and_the_organization(client, data, path):
    client = data.login(client, "search_viewer")
    client.get("/", {"range": "7d"})
    response = client.get(path)
    found = page_links(response)
    assert len(found) >= 13  # the sidebar at least
    missing = [link for link in found if "org=acme" not in link or "range=7d" not in link]
    assert missing == []


def test_the_calls_filters_follow_to_the_other_pages_and_back(client, data):
    client = data.login(client, "search_viewer")
    response = client.get("/calls/", {"range": "7d", "model": "gpt-4o", "status": "error"})
    assert len(response.context["page"].calls) == 4
    clear = "/calls/?org=acme&range=7d"
    sidebar = [link for link in page_links(response) if link != clear]
    assert clear in page_links(response)
    assert all("model=gpt-4o" in link and "status=error" in link and "range=7d" in link for link in sidebar)
    call_link = next(link for link in sidebar if re.match(r"/calls/[0-9a-f]{32}/", link))
    call_page = client.get(call_link)
    back = next(link for link in page_links(call_page) if link.startswith("/calls/?"))
    assert len(client.get(back).context["page"].calls) == 4


def test_the_older_calls_link_names_the_range_shown(client, data):
    client = data.login(client, "admin")
    client.get("/", {"range": "7d"})
    response = client.get("/calls/")
    older = "/calls/" + re.search(r'href="(\?[^"]*)" hx-get="[^"]*" id="older"', response.content.decode())[1]
    older = older.replace("&amp;", "&")
    assert "range=7d" in older
    assert len(client.get(older).context["page"].calls) == 68 - 50  # the rest of the 7 days' 68 calls
