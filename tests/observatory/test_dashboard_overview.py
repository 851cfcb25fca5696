"""The overview page (/): spend today, this month and in the range, by team and model, movers, latency, and the
budgets card."""

import csv
import io
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.utils import timezone

from billing.alerts.budgets import budget_status, period_bounds
from billing.models import Budget
from billing.rollups import rollup_pending
from ingest.models import LLMCall
from observatory.dashboard.filters import preset_period
from observatory.models import Membership, Organization, Role, Team
from tests.observatory.test_dashboard_seed import Seed, leaks_ads, money, seed, shown


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def _cost(**filters) -> Decimal:
    return LLMCall.objects.filter(**filters).aggregate(c=Sum("cost_usd"))["c"] or Decimal(0)


def test_it_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/").status_code == 405


def test_it_shows_the_whole_organizations_spend_to_an_admin(client, data):
    response = data.login(client, "admin").get("/")
    assert response.status_code == 200
    assert shown(response, "spend-range") == money(_cost())
    by_team = {row["label"]: row["cost_usd"] for row in response.context["report"].breakdowns["team"]}
    assert by_team == {"Search": _cost(team=data.search), "Ads": _cost(team=data.ads), "Unattributed": Decimal("5.00")}
    assert money(_cost(team=data.search)).encode() in response.content
    assert shown(response, "unattributed") == "$5.00"
    assert shown(response, "unpriced") == "4"


def test_a_fuzzed_call_is_counted_under_needs_attention_not_billed_and_explained(client, data):
    from billing.pricing.at_ingest import catalog_cache
    from observatory.services import create_api_key

    catalog_cache.refresh(force=True)
    spend = _cost()
    key = create_api_key(data.org, "fuzzer", team=data.search).plaintext
    fuzzed = {"trace_id": "f" * 32, "span_id": "e" * 16, "start_time": (timezone.now() - timedelta(minutes=5)).isoformat(),
              "provider": "openai", "request_model": "o1-pro", "input_tokens": 100_000_000}  # $15,000 at o1-pro's price
    response = client.post("/api/v1/calls", [fuzzed], content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 202
    rollup_pending()

    admin = data.login(client, "admin")
    page = admin.get("/")
    assert shown(page, "implausible") == "1"
    assert shown(page, "spend-range") == money(spend)  # not a cent of the $15,000
    assert b"cost_status=implausible" in page.content
    listed = admin.get("/calls/?cost_status=implausible").context["page"].calls
    assert [(call.request_model, call.cost_status, call.cost_usd) for call in listed] == [("o1-pro", "implausible", None)]
    call_page = admin.get(f"/calls/{'f' * 32}/{'e' * 16}/")
    assert b"100,000,000 input tokens, more than the 200,000-token context window of o1-pro" in call_page.content


def test_a_stream_without_usage_is_counted_under_needs_attention_with_the_fix_not_as_free(client, data):
    from observatory.services import create_api_key

    spend = _cost()
    key = create_api_key(data.org, "app", team=data.search).plaintext
    stream = {"trace_id": "d" * 32, "span_id": "c" * 16, "start_time": (timezone.now() - timedelta(minutes=5)).isoformat(),
              "provider": "openai", "request_model": "gpt-4o", "streaming": True}  # no tokens: usage never sent
    response = client.post("/api/v1/calls", [stream], content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 202
    rollup_pending()

    admin = data.login(client, "admin")
    page = admin.get("/")
    assert shown(page, "usage-missing") == "1"
    assert shown(page, "spend-range") == money(spend)
    assert b"include_usage" in page.content and b"cost_status=usage_missing" in page.content
    listed = admin.get("/calls/?cost_status=usage_missing").context["page"].calls
    assert [(call.request_model, call.cost_status, call.cost_usd) for call in listed] == [("gpt-4o", "usage_missing", None)]
    call_page = admin.get(f"/calls/{'d' * 32}/{'c' * 16}/")
    assert b"No usage reported" in call_page.content


def test_a_team_member_sees_only_their_teams_numbers(client, data):
    response = data.login(client, "search_viewer").get("/")
    assert response.status_code == 200
    assert shown(response, "spend-range") == money(_cost(team=data.search))
    assert [row["label"] for row in response.context["report"].breakdowns["team"]] == ["Search"]
    assert shown(response, "unpriced") == "3"
    assert b'data-testid="unattributed"' not in response.content
    assert leaks_ads(response.content) == []


def test_today_and_this_month_are_calendar_totals(client, data):
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    response = data.login(client, "search_viewer").get("/")
    assert shown(response, "spend-today") == money(_cost(team=data.search, start_time__gte=midnight))
    assert shown(response, "spend-month") == money(_cost(team=data.search, start_time__gte=midnight.replace(day=1)))


def test_the_last_24_hours_count_only_their_calls(client, data):
    period = preset_period("24h", timezone.now())
    response = data.login(client, "search_viewer").get("/?range=24h")
    assert shown(response, "spend-range") == money(_cost(team=data.search, start_time__gte=period.start))
    assert response.context["period"].key == "24h"


def test_spend_by_model_and_cost_per_1000_calls(client, data):
    response = data.login(client, "search_viewer").get("/")
    by_model = {row["label"]: row for row in response.context["report"].breakdowns["model"]}
    assert set(by_model) == {"gpt-4o-2024-08-06", "mystery-llm"}
    gpt = by_model["gpt-4o-2024-08-06"]
    assert gpt["calls"] == 40
    assert gpt["cost_per_1k_calls"] == _cost(team=data.search) * 1000 / 40


def test_top_movers_compare_with_the_previous_period(client, data):
    response = data.login(client, "admin").get("/?range=7d")
    movers = {(m["group"], m["label"]): m for m in response.context["report"].movers}
    ads = movers[("team", "Ads")]
    assert (ads["cost_usd"], ads["previous_cost_usd"]) == (Decimal("147.63"), Decimal(0))
    assert ads["change"].up and ads["change"].pct is None


def test_htmx_gets_only_the_body(client, data):
    response = data.login(client, "admin").get("/?range=7d", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="page-body")
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'class="toolbar"' in response.content
    assert "HX-Request" in response["Vary"]
    assert b"<html" in data.login(client, "admin").get("/?range=7d").content


def test_it_downloads_spend_by_team_as_csv(client, data):
    response = data.login(client, "admin").get("/?range=7d&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = {row["team"]: row for row in csv.DictReader(io.StringIO(response.getvalue().decode()))}
    assert set(rows) == {"Search", "Ads", "Unattributed"}
    assert Decimal(rows["Search"]["cost_usd"]) == _cost(team=data.search).quantize(Decimal("0.000001"))
    assert rows["Ads"]["calls"] == "20"


def test_a_bad_custom_range_falls_back_and_says_so(client, data):
    response = data.login(client, "admin").get("/?range=custom&start=2026-13-01&end=2026-11-01")
    assert response.status_code == 200
    assert b"Give a custom range as two dates" in response.content


def test_a_new_organization_is_told_how_to_send_its_first_call(client, db):
    org = Organization.objects.create(name="Fresh", slug="fresh")
    user = get_user_model().objects.create_user("newbie", password="pw-123456!")
    Membership.objects.create(user=user, organization=org, team=None, role=Role.ADMIN)
    client.force_login(user)
    response = client.get("/")
    assert b"No calls recorded yet" in response.content
    assert b"http://testserver/v1/traces" in response.content
    assert b"observatory_sdk.init(" in response.content


def test_a_user_without_a_team_is_told_to_ask_an_admin(client, db):
    client.force_login(get_user_model().objects.create_user("nobody", password="pw-123456!"))
    response = client.get("/")
    assert response.status_code == 200
    assert b"not a member of any team" in response.content


def test_it_picks_the_organization_from_the_querystring(client, data):
    other = Organization.objects.create(name="Globex", slug="globex")
    Team.objects.create(organization=other, name="Labs", slug="labs")
    admin = data.users["admin"]
    Membership.objects.create(user=admin, organization=other, team=None, role=Role.VIEWER)
    client.force_login(admin)
    assert client.get("/").context["viewer"].organization.slug == "acme"
    response = client.get("/?org=globex")
    assert response.context["viewer"].organization.slug == "globex"
    assert b"No calls recorded yet" in response.content
    assert b"?org=globex" in response.content  # navigation keeps the organization


def test_another_organization_is_a_404(client, data):
    Organization.objects.create(name="Globex", slug="globex")
    assert data.login(client, "admin").get("/?org=globex").status_code == 404


# The budgets card ---------------------------------------------------------------------------------------------------

def _percent(spent: Decimal, amount: Decimal) -> str:
    """As the page rounds it (floatformat: half up)."""
    return f"{(spent * 100 / amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)}%"


def test_the_budgets_card_shows_spent_amount_percent_and_forecast_of_this_period(client, data, monkeypatch):
    start, _ = period_bounds("month", "UTC", timezone.now())
    for n, (team, cost) in enumerate([(data.search, "40.00"), (data.ads, "2.00")]):  # spend this period, even on the 1st
        LLMCall.objects.create(organization=data.org, team=team, trace_id=f"{n:f>32}", span_id="f" * 16, operation="chat",
                               provider="openai", request_model="gpt-4o",
                               start_time=max(start, timezone.now() - timedelta(minutes=5)), duration_ms=500.0,
                               input_tokens=100, output_tokens=10, cost_usd=Decimal(cost), cost_status="priced")
    rollup_pending()
    # then the clock stops, so that the page and this test compute the forecast at the same instant (after the
    # rollup: ingested_at's default is the real clock, which must not run ahead of the rollup watermark)
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    spent = _cost(team=data.search, start_time__gte=start)  # the $40 call and the seed's calls of this month
    assert spent >= Decimal("40.00")
    amount = (spent * 2).quantize(Decimal("0.01"))  # about half used
    search = Budget.objects.create(organization=data.org, team=data.search, name="Search monthly", amount_usd=amount)
    ads = Budget.objects.create(organization=data.org, team=data.ads, name="Ads monthly", amount_usd=Decimal(1))

    response = data.login(client, "search_viewer").get("/")
    card = response.context["budgets"]
    assert [row.budget for row in card.rows] == [search] and card.total == 1  # not the Ads team's budget
    assert shown(response, f"overview-budget-spent-{search.id}") == money(spent)
    assert shown(response, f"overview-budget-amount-{search.id}") == money(amount)
    assert shown(response, f"overview-budget-percent-{search.id}") == _percent(spent, amount)
    forecast = budget_status(search, now).forecast.amount_usd
    assert forecast >= spent
    assert shown(response, f"overview-budget-forecast-{search.id}") == money(forecast)
    assert f'href="/budgets/{search.id}/?org=acme&amp;range=30d"' in response.content.decode()
    assert 'href="/budgets/?org=acme&amp;range=30d"' in response.content.decode()
    assert f"overview-budget-spent-{ads.id}" not in response.content.decode()
    assert leaks_ads(response.content) == []

    admin = data.login(client, "admin").get("/")
    assert [row.budget for row in admin.context["budgets"].rows] == [ads, search]  # the most used first
    assert shown(admin, f"overview-budget-percent-{ads.id}") == _percent(_cost(team=data.ads, start_time__gte=start),
                                                                         Decimal(1))


def test_the_budgets_card_lists_at_most_eight(client, data):
    for n in range(10):
        Budget.objects.create(organization=data.org, name=f"Budget {n}", amount_usd=Decimal(1000 + 100 * n))
    response = data.login(client, "admin").get("/")
    card = response.context["budgets"]
    assert (len(card.rows), card.total) == (8, 10)
    assert [row.budget.name for row in card.rows] == [f"Budget {n}" for n in range(8)]  # smaller amounts: more used
    assert "8 of 10" in response.content.decode()


def test_without_budgets_managers_get_a_link_to_create_one_and_viewers_do_not(client, data):
    admin = data.login(client, "admin").get("/")
    assert admin.context["budgets"].rows == []
    assert 'href="/budgets/?org=acme&amp;range=30d#new-budget"' in admin.content.decode()
    viewer = data.login(client, "search_viewer").get("/")
    assert b'data-testid="create-budget"' not in viewer.content
    assert b"a manager of your team or an admin can create one" in viewer.content
