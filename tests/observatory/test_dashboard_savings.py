"""The savings pages: recommendations (/recommendations/) with accept / dismiss / reopen and the export buttons, and
the what-if calculator (/what-if/) — figures checked by hand against the bundled catalog's prices (per million
tokens: gpt-4o $2.50 in / $10 out, batch $1.25 / $5; gpt-4o-mini $0.15 / $0.60, batch $0.075 / $0.30)."""

import csv
import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Recommendation
from billing.pricing.at_ingest import catalog_cache
from billing.rollups import rollup_pending
from billing.services import load_default_catalog
from ingest.models import LLMCall
from observatory.celery import app as celery_app
from tests.observatory.test_dashboard_seed import user

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)


@pytest.fixture
def people(org, team, other_team):
    from observatory.models import Role

    return {
        "admin": user("alice", org, None, Role.ADMIN),
        "manager": user("mona", org, team, Role.MANAGER),
        "viewer": user("vera", org, team, Role.VIEWER),
        "other": user("otto", org, other_team, Role.MANAGER),
    }


def rec(org, fingerprint, *, team=None, usd="10", kind="failed_calls", status="open", title=None, **fields):
    return Recommendation.objects.create(
        organization=org, fingerprint=fingerprint, kind=kind, team=team, title=title or fingerprint, status=status,
        monthly_savings_usd=Decimal(usd), evidence_value=Decimal(usd), evidence={"window_days": 30, "calls": 1234},
        formula="Σ cost_usd of the failed calls", **fields)


def add_calls(org, team, count, *, model="gpt-4o", input_tokens=1000, output_tokens=100, feature="answer"):
    now = timezone.now()
    start = LLMCall.objects.count()
    per_call = {"gpt-4o": Decimal("2.5") * input_tokens + Decimal(10) * output_tokens}[model] / 10**6
    LLMCall.objects.bulk_create([LLMCall(
        organization=org, trace_id=f"{start + i + 1:032x}", span_id=f"{start + i + 1:016x}",
        start_time=now - timedelta(days=1, seconds=i), provider="openai", operation="chat", request_model=model,
        response_model=model, team=team, feature=feature, input_tokens=input_tokens, output_tokens=output_tokens,
        cost_usd=per_call, cost_status="priced", request_hash=f"h{start + i}") for i in range(count)])
    rollup_pending()
    return per_call * count


def first_call(org):
    return LLMCall.objects.filter(organization=org).order_by("start_time").first().start_time


def month_of(window_usd: str, rec: Recommendation, *, first_call) -> Decimal:
    """A recommendation's month from the seeded calls: the window's saving × 30.44 / the days from the hour of the
    first call to the end of the run (the job's clock, stored as data_end)."""
    assert rec.data_start == first_call.replace(minute=0, second=0, microsecond=0)
    span = rec.data_end - rec.data_start
    days = Decimal(span.days) + Decimal(span.seconds) / 86400
    return (Decimal(window_usd) * Decimal("30.44") / days).quantize(Decimal("0.000001"))


# Recommendations ------------------------------------------------------------------------------------------------

def test_it_requires_login(client, org):
    assert client.get("/recommendations/").status_code == 302
    assert client.get("/what-if/").status_code == 302


def test_an_admin_sees_every_open_recommendation_biggest_first_with_the_total(client, org, team, other_team, people):
    rec(org, "a", team=team, usd="12.50", title="Search failures")
    rec(org, "b", team=other_team, usd="40", title="Other failures")
    rec(org, "c", usd="7.25", title="Org-wide failures")
    rec(org, "d", team=team, usd="1000", status="dismissed", title="Dismissed one")
    client.force_login(people["admin"])
    response = client.get("/recommendations/")
    assert response.status_code == 200
    assert [r["rec"].title for r in response.context["rows"]] == ["Other failures", "Search failures", "Org-wide failures"]
    summary = response.context["summary"]
    assert (summary.open_count, summary.open_monthly_usd, summary.dismissed_count) == (3, Decimal("59.75"), 1)
    assert b"$59.75" in response.content
    every = client.get("/recommendations/", {"status": "all"})
    assert len(every.context["rows"]) == 4


def test_a_team_member_sees_only_their_teams_recommendations(client, org, team, other_team, people):
    rec(org, "a", team=team, title="Search failures")
    rec(org, "b", team=other_team, title="Otherteam failures")
    rec(org, "c", title="Org-wide failures")
    client.force_login(people["viewer"])
    response = client.get("/recommendations/")
    assert [r["rec"].title for r in response.context["rows"]] == ["Search failures"]
    assert b"Otherteam" not in response.content and b"Org-wide" not in response.content


def test_the_calls_link_filters_the_explorer_to_the_recommendations_calls(client, org, team, people):
    r = rec(org, "routing", team=team, kind="model_routing", feature="classify", model="gpt-4o")
    client.force_login(people["admin"])
    [row] = client.get("/recommendations/").context["rows"]
    url = row["calls_url"]
    assert url.startswith("/calls/?") and "model=gpt-4o" in url and "feature=classify" in url and f"team={team.slug}" in url
    assert row["evidence"][0] == ("Calls", "1,234")
    assert r.title in client.get("/recommendations/").content.decode()


def test_the_calls_explorer_filters_by_feature(client, org, team, people, catalog):
    add_calls(org, team, 3, feature="classify")
    add_calls(org, team, 2, feature="summarize")
    client.force_login(people["admin"])
    response = client.get("/calls/", {"feature": "classify", "range": "7d"})
    assert {c.feature for c in response.context["page"].calls} == {"classify"}
    assert len(response.context["page"].calls) == 3


def test_a_manager_accepts_dismisses_with_a_reason_and_reopens(client, org, team, people):
    r = rec(org, "a", team=team)
    client.force_login(people["manager"])
    url = f"/recommendations/{r.id}/status/"
    assert client.post(url, {"status": "accepted"}).status_code == 302
    r.refresh_from_db()
    assert r.status == "accepted"
    client.post(url, {"status": "dismissed", "reason": "  we need gpt-4o quality here  "})
    r.refresh_from_db()
    assert (r.status, r.dismissed_reason) == ("dismissed", "we need gpt-4o quality here")
    page = client.get("/recommendations/", {"status": "dismissed"})
    assert b"we need gpt-4o quality here" in page.content
    client.post(url, {"status": "open"})
    r.refresh_from_db()
    assert (r.status, r.dismissed_reason) == ("open", "")


def test_viewers_other_teams_and_bad_statuses_are_refused(client, org, team, other_team, people):
    mine, theirs, org_wide = rec(org, "a", team=team), rec(org, "b", team=other_team), rec(org, "c")
    client.force_login(people["viewer"])
    assert client.post(f"/recommendations/{mine.id}/status/", {"status": "accepted"}).status_code == 403
    client.force_login(people["manager"])
    assert client.post(f"/recommendations/{theirs.id}/status/", {"status": "accepted"}).status_code == 404
    assert client.post(f"/recommendations/{org_wide.id}/status/", {"status": "accepted"}).status_code == 404
    response = client.post(f"/recommendations/{mine.id}/status/", {"status": "maybe"}, follow=True)
    assert response.status_code == 200 and b"Choose open, accepted or dismissed" in response.content
    assert client.get(f"/recommendations/{mine.id}/status/").status_code == 405
    for r in (mine, theirs, org_wide):
        r.refresh_from_db()
        assert r.status == "open"


def test_the_kind_filter_and_the_csv(client, org, team, people):
    rec(org, "a", team=team, kind="failed_calls", usd="3.5", title="Failures")
    rec(org, "b", team=team, kind="response_cache", usd="8", title="=cmd|' /C calc'!A0")
    client.force_login(people["admin"])
    response = client.get("/recommendations/", {"kind": "response_cache"})
    assert [r["rec"].kind for r in response.context["rows"]] == ["response_cache"]
    download = client.get("/recommendations/", {"format": "csv", "status": "all"})
    rows = list(csv.DictReader(io.StringIO(download.getvalue().decode())))
    assert [(r["kind"], r["monthly_savings_usd"]) for r in rows] == [("response_cache", "8.000000"),
                                                                     ("failed_calls", "3.500000")]
    assert rows[0]["title"].startswith("'=")  # a spreadsheet will not run it


def test_recompute_now_runs_the_job_for_the_organization(client, org, team, people, catalog):
    add_calls(org, team, 1000, input_tokens=500, output_tokens=50, feature="classify")
    client.force_login(people["viewer"])
    assert client.post("/recommendations/refresh/").status_code == 403
    client.force_login(people["manager"])
    celery_app.conf.task_always_eager = True
    try:
        response = client.post("/recommendations/refresh/", follow=True)
    finally:
        celery_app.conf.task_always_eager = False
    assert response.status_code == 200 and b"Recomputing" in response.content
    # 1,000 × (500 × (2.50 − 0.15) + 50 × (10 − 0.60)) / 1e6 = $1.645, all of it a day ago: about × 30.44 a month
    routing = Recommendation.objects.get(organization=org, kind="model_routing")
    assert routing.feature == "classify" and routing.evidence_value == Decimal("1.645")
    assert routing.monthly_savings_usd == month_of("1.645", routing, first_call=first_call(org))
    assert Decimal("46") < routing.monthly_savings_usd < Decimal("50.08")  # 1 to 1.07 days: not $1.645
    assert routing.title in response.content.decode()


def test_the_export_buttons_point_at_the_pages_export_route(client, org, people):
    client.force_login(people["admin"])
    page = client.get("/recommendations/").content.decode()
    assert 'action="/recommendations/exports/chargeback/"' in page
    assert 'formaction="/recommendations/exports/focus/"' in page
    assert f'<option value="{timezone.now():%Y-%m}">' in page
    assert client.get("/recommendations/exports/chargeback/", {"month": f"{timezone.now():%Y-%m}", "format": "xlsx",
                                                               "org": org.slug}).status_code == 200


# What-if ---------------------------------------------------------------------------------------------------------

def test_what_if_without_changes_shows_the_month_as_it_is(client, org, team, people, catalog):
    cost = add_calls(org, team, 1000)
    assert cost == Decimal("3.5")  # 1,000 × (1,000 × $2.50 + 100 × $10) / 1e6
    client.force_login(people["manager"])
    response = client.get("/what-if/", {"range": "30d"})
    assert response.status_code == 200
    result = response.context["result"]
    days = response.context["data_span"].days  # from the hour of the first call, a day ago, to now
    assert Decimal(1) <= days < Decimal("1.06")  # the 1,000 calls go back 1,000 s more, the first hour up to 1 h
    assert result.baseline_monthly_usd == result.new_monthly_usd == Decimal("3.5") * (Decimal("30.44") / days)
    assert result.steps == []
    [row] = response.context["model_rows"]
    assert (row["usage"].key, row["route"], row["batch"]) == ("openai/gpt-4o", "gpt-4o-mini", True)


def test_what_if_moves_caches_and_batches_in_order(client, org, team, people, catalog):
    add_calls(org, team, 1000)
    client.force_login(people["manager"])
    response = client.get("/what-if/", {"range": "30d", "from_model": "openai/gpt-4o", "to_model": "gpt-4o-mini",
                                        "move_share": "50", "cache_hit_rate": "20", "batch_share": "50"})
    assert response.status_code == 200, response.context["form"].errors
    result = response.context["result"]
    scale = Decimal("30.44") / response.context["data_span"].days  # the day of calls, per month

    def per_month(window_usd: str) -> Decimal:
        return (Decimal(window_usd) * scale).quantize(Decimal("0.000001"))

    move, cache, batch = (step.monthly_change_usd.quantize(Decimal("0.000001")) for step in result.steps)
    # move half: − $1.75 of gpt-4o + ½ × (1e6 × $0.15 + 1e5 × $0.60) / 1e6 = ½ × $0.21 = $0.105 at gpt-4o-mini
    assert move == per_month("-1.645")
    # cache 20% of the $1.855 left
    assert cache == per_month("-0.371")
    # batch half of what is left; both models' batch prices are half their standard ones:
    # ½ × ($1.40 × ½ + $0.084 × ½) = $0.371
    assert batch == per_month("-0.371")
    assert result.new_monthly_usd.quantize(Decimal("0.000001")) == per_month("1.113")
    assert round(result.change_percent, 2) == Decimal("-68.20")


def test_what_if_bad_input_is_a_400_with_a_message_not_a_500(client, org, team, people, catalog):
    add_calls(org, team, 10)
    client.force_login(people["manager"])
    too_much = client.get("/what-if/", {"cache_hit_rate": "150"})
    assert too_much.status_code == 400 and "less than or equal to 100" in too_much.content.decode()
    no_target = client.get("/what-if/", {"from_model": "openai/gpt-4o", "move_share": "10"})
    assert no_target.status_code == 400 and b"name the model it goes to" in no_target.content
    unknown = client.get("/what-if/", {"from_model": "openai/gpt-4o", "to_model": "no-such-model", "move_share": "10"})
    assert unknown.status_code == 400 and b"no model" in unknown.content
    assert client.get("/what-if/", {"move_share": "abc"}).status_code == 400
    assert unknown.context["result"].new_monthly_usd == unknown.context["result"].baseline_monthly_usd


def test_what_if_reads_only_the_viewers_teams(client, org, team, other_team, people, catalog):
    add_calls(org, other_team, 100)
    client.force_login(people["manager"])
    response = client.get("/what-if/")
    assert response.context["result"].baseline_monthly_usd == 0 and response.context["model_rows"] == []
    other = client.get("/what-if/", {"from_model": "openai/gpt-4o", "to_model": "gpt-4o-mini", "move_share": "10"})
    assert other.status_code == 400  # not a choice: that traffic is not theirs


def test_the_api_recomputes_on_demand_for_managers_only(client, org, team, people, catalog):
    from observatory.services import create_api_key

    add_calls(org, team, 1000, input_tokens=500, output_tokens=50, feature="classify")
    key = create_api_key(org, "ci", team=team).plaintext
    assert client.post("/api/v1/recommendations/refresh", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 403
    client.force_login(people["viewer"])
    assert client.post("/api/v1/recommendations/refresh").status_code == 403
    assert not Recommendation.objects.exists()
    client.force_login(people["manager"])
    celery_app.conf.task_always_eager = True
    try:
        response = client.post("/api/v1/recommendations/refresh")
    finally:
        celery_app.conf.task_always_eager = False
    assert response.status_code == 202 and response.json()["detail"] == "queued"
    routing = Recommendation.objects.get(kind="model_routing")
    assert routing.monthly_savings_usd == month_of("1.645", routing, first_call=first_call(org))
    [row] = client.get("/api/v1/recommendations").json()
    assert Decimal(row["monthly_savings_usd"]) == routing.monthly_savings_usd
    assert Decimal(row["evidence_value"]) == Decimal("1.645")
    days = routing.data_end - routing.data_start
    assert Decimal(row["days_with_data"]) == (Decimal(days.days) + Decimal(days.seconds) / 86400).quantize(
        Decimal("0.0001"))
    assert row["data_start"].startswith(routing.data_start.strftime("%Y-%m-%dT%H:00:00"))


def test_the_self_host_calculator_reproduces_the_seed_example(client, org, people, catalog):
    # 10M queries/month × (1,000 in + 300 out) at $2 / $8 per million = $44,000/month. With the defaults:
    # 3e9 ÷ 250 + 1e10 ÷ 2,500 = 16,000,000 GPU-s ÷ (2,628,000 s × 0.6) = 10.15 → 11 GPUs × $2.50 × 730 h = $20,075
    # + $12,000 operations = $32,075; saving $11,925/month; ceil($150,000 ÷ $11,925 = 12.58) → month 13
    client.force_login(people["admin"])
    response = client.get("/what-if/", {"sh-api_monthly_usd": "44000", "sh-monthly_input_tokens": "10000000000",
                                        "sh-monthly_output_tokens": "3000000000"})
    assert response.status_code == 200
    result = response.context["crossover"]
    assert (result.gpus, result.self_host_monthly_usd, result.monthly_saving_usd, result.break_even_month) == (
        11, Decimal("32075"), Decimal("11925"), 13)
    page = response.content.decode()
    assert 'data-testid="sh-break-even">month 13<' in page
    chart = response.context["crossover_chart"]
    assert chart["labels"][12] == "Month 13"
    assert Decimal(chart["datasets"][0]["data"][12]) >= Decimal(chart["datasets"][1]["data"][12])  # API caught up
    assert Decimal(chart["datasets"][0]["data"][11]) < Decimal(chart["datasets"][1]["data"][11])
    # cheaper GPUs: 11 × $1.25 × 730 = $10,037.50 + $12,000 → saving $21,962.50 → ceil(6.83) = month 7
    cheaper = client.get("/what-if/", {"sh-api_monthly_usd": "44000", "sh-monthly_input_tokens": "10000000000",
                                       "sh-monthly_output_tokens": "3000000000", "sh-gpu_hourly_usd": "1.25"})
    assert cheaper.context["crossover"].break_even_month == 7


def test_the_self_host_calculator_starts_from_the_teams_traffic_and_refuses_nonsense(client, org, team, people, catalog):
    add_calls(org, team, 1000)  # $3.50, 1M input and 100k output tokens a day ago
    client.force_login(people["manager"])
    response = client.get("/what-if/", {"range": "30d"})
    result = response.context["crossover"]
    scale = Decimal("30.44") / response.context["data_span"].days
    assert (result.api_monthly_usd, result.monthly_input_tokens, result.monthly_output_tokens) == (
        (Decimal("3.50") * scale).quantize(Decimal("0.01")), int(1_000_000 * scale), int(100_000 * scale))
    assert result.gpus == 2 and result.break_even_month is None  # two GPUs cost far more than $3.50
    assert b'data-testid="sh-break-even">never<' in response.content
    bad = client.get("/what-if/", {"sh-target_utilization": "1.5"})
    assert bad.status_code == 400 and bad.context["crossover"] is None
    assert client.get("/what-if/", {"sh-gpu_hourly_usd": "0"}).status_code == 400


def test_what_if_with_an_unknown_target_shows_the_message_and_no_change(client, org, team, people, catalog):
    add_calls(org, team, 100)
    client.force_login(people["admin"])
    query = {"from_model": "openai/gpt-4o", "to_model": "no-such-model", "move_share": "10"}
    unknown = client.get("/what-if/", query, HTTP_HX_REQUEST="true")  # as htmx asks for it
    body = unknown.content.decode()
    assert unknown.status_code == 400 and "no model" in body
    assert 'data-testid="what-if-error"' in body
    assert re.search(r'data-testid="what-if-change">—<', body) and "+$0.00" not in body
    page = client.get("/").content.decode()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page)[1]
    handling = json.loads(config)["responseHandling"]
    first_400 = next(rule for rule in handling if re.fullmatch(rule["code"], "400"))
    assert first_400["swap"] is True  # htmx puts the 400's page (with its message) in place


def test_what_if_offers_the_catalogs_models_as_you_type(client, org, team, people, catalog):
    client.force_login(people["admin"])
    page = client.get("/what-if/", {"to_model": "gpt-4o-mi"}).content.decode()
    assert 'list="catalog-models"' in page and 'hx-get="/what-if/models/"' in page
    assert '<datalist id="catalog-models"><option value="gpt-4o-mini"></option>' in page
    options = client.get("/what-if/models/", {"to_model": "claude haiku"}).content.decode()
    names = re.findall(r'<option value="([^"]+)">', options)
    assert names and all("claude" in name and "haiku" in name for name in names)
    assert len(client.get("/what-if/models/", {"to_model": ""}).content.decode().split("<option")) - 1 == 20
    assert client.post("/what-if/models/").status_code == 405
    client.logout()
    assert client.get("/what-if/models/", {"to_model": "gpt"}).status_code == 302


def test_the_what_if_month_is_scaled_by_the_days_with_data_and_agrees_with_the_budget_forecast(
        client, org, team, people, catalog):
    """14 days of calls, $1.00 an hour, in a 30-day range: $336 over 14 days is $730.56 a month (× 30.44 / 14), not
    the $336 that dividing by the range's 30 days said; the budget's month-end forecast extrapolates the same rate
    over the calendar month (from the last 24 hours' rate), so the two agree within 5% once the month's length is
    accounted for (they used to differ 2.2×)."""
    from calendar import monthrange

    from billing.alerts.budgets import budget_status
    from billing.models import Budget

    now = timezone.now()
    LLMCall.objects.bulk_create([LLMCall(
        organization=org, trace_id=f"{h:032x}", span_id=f"{h:016x}", start_time=now - timedelta(hours=h),
        provider="openai", operation="chat", request_model="gpt-4o", response_model="gpt-4o", team=team,
        input_tokens=100_000, output_tokens=75_000, cost_usd=Decimal("1.00"), cost_status="priced")
        for h in range(1, 14 * 24 + 1)])
    rollup_pending()
    client.force_login(people["admin"])
    response = client.get("/what-if/", {"range": "30d"})
    data = response.context["data_span"]
    assert Decimal(14) <= data.days < Decimal("14.05")
    baseline = response.context["result"].baseline_monthly_usd
    assert abs(baseline - Decimal(336) * Decimal("30.44") / data.days) < Decimal("0.000001")
    assert Decimal("727") < baseline < Decimal("731")
    basis = re.search(r'data-testid="what-if-basis">([^<]*)<', response.content.decode())[1]
    first = (now - timedelta(hours=14 * 24)).replace(minute=0, second=0, microsecond=0)
    assert basis == f"based on {data.days.quantize(Decimal('0.1')).normalize():f} days ({first:%b %-d} – {now:%b %-d}) of data"

    budget = Budget.objects.create(organization=org, name="Everything", amount_usd=Decimal(10_000), period="month")
    forecast = budget_status(budget, now).forecast.amount_usd
    days_in_month = monthrange(now.year, now.month)[1]
    same_month = baseline * days_in_month / Decimal("30.44")
    assert abs(same_month - forecast) / forecast < Decimal("0.05")


# Monthly figures: the days with data ------------------------------------------------------------------------------

def dollar_an_hour(org, team, until, hours=14 * 24, request_hash="same question"):
    """One gpt-4o call an hour, the `hours` hours before `until`: 100,000 input + 75,000 output tokens = $0.25 +
    $0.75 = $1.00 each, every one the same request (so all but the first could have come from a response cache)."""
    LLMCall.objects.bulk_create([LLMCall(
        organization=org, trace_id=f"{h:032x}", span_id=f"{h:016x}", start_time=until - timedelta(hours=h),
        provider="openai", operation="chat", request_model="gpt-4o", response_model="gpt-4o", team=team,
        input_tokens=100_000, output_tokens=75_000, cost_usd=Decimal("1.00"), cost_status="priced",
        request_hash=request_hash) for h in range(1, hours + 1)])
    rollup_pending()


def test_savings_baseline_and_budget_forecast_agree_on_the_month(org, team, people, catalog):
    """14 days of calls at $1.00 an hour, seen at noon on the 11th of last month (3.5 of the 14 days before the
    month began: too little history for a weekday profile, so the forecast runs at the last 24 hours' rate):
    - Savings "Spend now": $336 × 30.44 / 14 days with data = $730.56 a month (× 30 / 30 used to say $336);
    - the month's budget forecast: $252 spent (10.5 days × $24) + 468 hours left × $1.00 = $720 for a 30-day month,
      which is $720 × 30.44 / 30 = $730.56 for a month of 30.44 days: the same to the cent."""
    from calendar import monthrange
    from datetime import UTC, datetime

    from billing.alerts.budgets import budget_status
    from billing.models import Budget
    from observatory.access import viewer_in
    from observatory.dashboard import savings

    this_month = timezone.now().date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    now = datetime(last_month.year, last_month.month, 11, 12, tzinfo=UTC)
    dollar_an_hour(org, team, now)

    baseline = savings.spend_baseline(viewer_in(people["admin"], org), now=now)
    assert baseline.span.days == 14 and baseline.span.first == now - timedelta(days=14)
    # $336 × (30.44 / 14): the what-if's per-model scale, exact to 27 decimal places
    assert abs(baseline.monthly_usd - Decimal("730.56")) < Decimal("1E-20")

    budget = Budget.objects.create(organization=org, name="Everything", amount_usd=Decimal(10_000), period="month")
    forecast = budget_status(budget, now).forecast
    days_in_month = monthrange(now.year, now.month)[1]
    assert forecast.method == "last 24h rate"
    assert forecast.amount_usd == Decimal(252) + (days_in_month * 24 - 252) * Decimal(1) == 24 * days_in_month
    assert abs(forecast.amount_usd * Decimal("30.44") / days_in_month - baseline.monthly_usd) < Decimal("0.01")


def test_the_savings_page_says_the_days_and_agrees_with_the_what_if_page(client, org, team, people, catalog):
    """The same 14 days read on both pages now: "Spend now" on Savings is the what-if page's "Now" (both × 30.44 /
    the days from the first call's hour to the request, within a cent of each other), the response-cache saving
    ($335: every call but the first) is scaled by the same days, and the page, its CSV and the API say which."""
    from billing.recommendations import generate

    top = timezone.now().replace(minute=0, second=0, microsecond=0)
    dollar_an_hour(org, team, top)
    first = top - timedelta(days=14)
    [cache] = generate(org.pk)
    assert cache.kind == "response_cache" and cache.evidence_value == Decimal("335")
    assert cache.monthly_savings_usd == month_of("335", cache, first_call=first)
    # $335 × 30.44 / 14 = $728.38 to $335 × 30.44 / 14.042 = $726.22 (the test started up to an hour ago): not $335
    assert Decimal("726.2") < cache.monthly_savings_usd <= Decimal("728.39")

    client.force_login(people["admin"])
    page = client.get("/recommendations/")
    what_if = client.get("/what-if/", {"range": "30d"})
    baseline, now_usd = page.context["baseline"], what_if.context["result"].baseline_monthly_usd
    assert baseline.span.first == what_if.context["data_span"].first == first
    assert abs(baseline.monthly_usd - Decimal(336) * Decimal("30.44") / baseline.span.days) < Decimal("0.000001")
    assert abs(baseline.monthly_usd - now_usd) < Decimal("0.01")
    assert Decimal("728.3") < baseline.monthly_usd <= Decimal("730.56")  # $336 × 30.44 / 14.042 to 14 days
    html = page.content.decode()
    today = timezone.now() - timedelta(microseconds=1)
    days = f"{first:%b %-d} – {today:%b %-d}"
    assert f'data-testid="savings-baseline-basis">based on 14 days with data, {days}<' in html
    assert f'data-testid="rec-basis-{cache.id}">Monthly figure based on 14 days with data, {days}<' in html
    assert f"1 recommendation, based on 14 days with data, {days}<" in html
    shown = re.search(r'data-testid="savings-baseline">\$([\d,.]+)<', html)[1]
    assert shown == f"{baseline.monthly_usd:,.2f}"

    [row] = list(csv.DictReader(io.StringIO(client.get("/recommendations/", {"format": "csv"}).getvalue().decode())))
    assert Decimal(row["monthly_savings_usd"]) == cache.monthly_savings_usd
    assert Decimal(row["window_savings_usd"]) == Decimal("335")
    assert Decimal("14") <= Decimal(row["days_with_data"]) < Decimal("14.05")
    assert row["data_start"] == first.isoformat()


def test_a_row_from_before_the_days_were_stored_shows_no_basis(client, org, team, people):
    legacy = rec(org, "old", team=team, usd="10")
    client.force_login(people["admin"])
    html = client.get("/recommendations/").content.decode()
    assert f'rec-basis-{legacy.id}' not in html and "$10.00" in html
    assert 'data-testid="savings-baseline-basis">no calls in the last 30 days<' in html
