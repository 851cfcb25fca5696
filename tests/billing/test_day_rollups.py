"""Daily spend per end user and session and failed calls per error type (billing.day_rollups), read through
billing.queries, give what the raw calls give: over whole and partial days, for the organization and for a team,
after late calls, re-pricing and reruns."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from billing import queries
from billing.models import DailyEndUserSpend, DailyErrorType, DailySessionSpend
from billing.rollups import rollup_hours, rollup_pending
from ingest.models import LLMCall
from observatory.access import Scope

DAY = datetime(2026, 11, 16, tzinfo=UTC)
ERRORS = [("RateLimitError", 429), ("Timeout", None), ("ServerError", 500)]
RANGES = [
    (DAY, DAY + timedelta(days=3)),  # whole days
    (DAY + timedelta(hours=7), DAY + timedelta(days=2, hours=15)),  # partial days at both ends
    (DAY + timedelta(days=1, hours=3), DAY + timedelta(days=1, hours=9)),  # inside one day
    (DAY - timedelta(days=1), DAY + timedelta(days=1, hours=1)),  # from before the first call
]


@pytest.fixture
def dataset(org, team, other_team):
    rng = random.Random(5)
    rows = []
    for i in range(500):
        start = DAY + timedelta(minutes=rng.uniform(0, 3 * 24 * 60))
        failed = rng.random() < 0.1
        user = rng.choice(["", "alice", "bob", "carol", "dave", "erin", "unpriced-user"])
        error_type, http_status = rng.choice(ERRORS) if failed else ("", None)
        rows.append(LLMCall(
            organization=org, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", start_time=start, duration_ms=500,
            provider="openai", operation="chat", request_model="gpt-4o-mini", response_model="gpt-4o-mini",
            input_tokens=1000 + i, output_tokens=50 + i % 7, status="error" if failed else "ok", error_type=error_type,
            http_status=http_status, team=team if i % 3 else other_team, end_user=user,
            session=f"{user}-{start:%d}" if user and i % 4 else "",
            cost_usd=None if user == "unpriced-user" else Decimal("0.0012345678") + Decimal(i) / 10**7,
            cost_status="unknown_model" if user == "unpriced-user" else "priced",
        ))
    LLMCall.objects.bulk_create(rows)
    rollup_pending()
    return rows


def _calls(scope: Scope, start: datetime, end: datetime):
    return LLMCall.objects.filter(scope.q(), start_time__gte=start, start_time__lt=end)


def raw_callers(scope: Scope, start: datetime, end: datetime, field: str) -> list[dict]:
    return list(
        _calls(scope, start, end).exclude(**{field: ""}).values(field)
        .annotate(calls=Count("id"), errors=Count("id", filter=Q(status="error")), input_tokens=Sum("input_tokens"),
                  output_tokens=Sum("output_tokens"), cost_usd=Sum("cost_usd"), last_seen=Max("start_time"))
        .order_by("-cost_usd", "-calls", field)
    )


def raw_error_types(scope: Scope, start: datetime, end: datetime) -> dict:
    return {(r["error_type"], r["http_status"]): r for r in
            _calls(scope, start, end).filter(status="error").values("error_type", "http_status")
            .annotate(calls=Count("id"), cost_usd=Sum("cost_usd"), last_seen=Max("start_time")).order_by()}


def _sorted_like_the_page(rows: list[dict], field: str) -> list[dict]:
    """Most expensive first, uncosted last, then most calls, then by name."""
    return sorted(rows, key=lambda r: (r["cost_usd"] is None, -(r["cost_usd"] or 0), -r["calls"], r[field]))


def assert_matches_raw(scope: Scope, start: datetime, end: datetime) -> None:
    for field in ("end_user", "session"):
        assert queries.top_callers(scope, start, end, field) == _sorted_like_the_page(
            raw_callers(scope, start, end, field), field), (field, start, end)
    counts = _calls(scope, start, end).aggregate(calls=Count("id"), with_user=Count("id", filter=~Q(end_user="")),
                                                 with_session=Count("id", filter=~Q(session="")))
    assert queries.calls_naming_callers(scope, start, end) == counts
    read = queries.error_types(scope, start, end)
    assert {(r["error_type"], r["http_status"]): r for r in read} == raw_error_types(scope, start, end)
    assert [r["calls"] for r in read] == sorted((r["calls"] for r in read), reverse=True)


@pytest.mark.django_db
@pytest.mark.parametrize(("start", "end"), RANGES)
def test_figures_equal_the_raw_calls_for_the_organization_and_a_team(org, team, dataset, start, end):
    assert_matches_raw(Scope(org.id), start, end)
    assert_matches_raw(Scope(org.id, team_ids=(team.id,)), start, end)


@pytest.mark.django_db
def test_a_user_whose_calls_have_no_cost_comes_last_with_no_cost(org, dataset):
    rows = queries.top_callers(Scope(org.id), DAY, DAY + timedelta(days=3))
    assert rows[-1]["end_user"] == "unpriced-user" and rows[-1]["cost_usd"] is None
    assert rows[-1]["calls"] == sum(1 for call in dataset if call.end_user == "unpriced-user")


@pytest.mark.django_db
def test_the_limit_keeps_the_most_expensive(org, dataset):
    whole = (DAY, DAY + timedelta(days=3))
    assert queries.top_callers(Scope(org.id), *whole, limit=2) == queries.top_callers(Scope(org.id), *whole)[:2]


@pytest.mark.django_db
def test_rolling_days_up_again_replaces_them(org, dataset):
    before = sorted(DailyEndUserSpend.objects.values_list("day", "team_id", "end_user", "calls", "cost_usd"))
    sessions, errors = DailySessionSpend.objects.count(), DailyErrorType.objects.count()
    rollup_hours(org.id, [DAY + timedelta(hours=h) for h in range(0, 72, 5)])
    assert sorted(DailyEndUserSpend.objects.values_list("day", "team_id", "end_user", "calls", "cost_usd")) == before
    assert (DailySessionSpend.objects.count(), DailyErrorType.objects.count()) == (sessions, errors)
    assert_matches_raw(Scope(org.id), DAY, DAY + timedelta(days=3))


@pytest.mark.django_db
def test_a_late_call_and_a_repriced_call_are_included_on_the_next_run(org, team, dataset):
    LLMCall.objects.create(organization=org, trace_id="f" * 32, span_id="f" * 16, start_time=DAY + timedelta(hours=30),
                           duration_ms=100, provider="openai", request_model="gpt-4o-mini", team=team, end_user="zoe",
                           session="zoe-1", status="error", error_type="Timeout", cost_usd=Decimal("9.5"),
                           cost_status="priced")
    repriced = next(call for call in dataset if call.end_user == "alice")
    LLMCall.objects.filter(pk=repriced.pk).update(cost_usd=Decimal("4.25"), ingested_at=timezone.now())
    rollup_pending()
    top = queries.top_callers(Scope(org.id), DAY, DAY + timedelta(days=3))
    assert [(top[0]["end_user"], top[0]["cost_usd"]), top[1]["end_user"]] == [("zoe", Decimal("9.5")), "alice"]
    for start, end in RANGES:
        assert_matches_raw(Scope(org.id), start, end)


@pytest.mark.django_db
def test_a_product_scope_is_refused(org):
    from observatory.access import ProductScope

    with pytest.raises(ValueError, match="not a product"):
        queries.top_callers(ProductScope(org.id, product_id=1), DAY, DAY + timedelta(days=1))


@pytest.fixture
def sessions(org, team, other_team):
    """Sessions of one call, of many calls in a day, over several days, in two teams, and a dear one that starts
    cheap: the users page's shortcut (a session's only row is its total) must give what summing every row gives."""
    rng = random.Random(11)
    plan = [(f"one-{n}", [(rng.uniform(0, 70), team)]) for n in range(60)]
    plan += [(f"day-{n}", [(12 + rng.uniform(0, 10), team) for _ in range(4)]) for n in range(20)]
    plan += [(f"days-{n}", [(h, team) for h in (5, 29, 53)]) for n in range(10)]
    plan += [(f"teams-{n}", [(30, team), (31, other_team)]) for n in range(10)]
    plan.append(("slow-burner", [(hour, team) for hour in range(0, 72, 3)]))  # cheap each day, dearest in all
    rows, i = [], 0
    for session, calls in plan:
        for hour, call_team in calls:
            i += 1
            cost = Decimal("0.0009") if session == "slow-burner" else Decimal(rng.randint(1, 3000)) / 10**6
            rows.append(LLMCall(
                organization=org, trace_id=f"{i:032x}", span_id=f"{i:016x}", start_time=DAY + timedelta(hours=hour),
                duration_ms=500, provider="openai", operation="chat", request_model="gpt-4o-mini",
                response_model="gpt-4o-mini", input_tokens=100, output_tokens=10, status="ok", team=call_team,
                end_user="u", session=session, cost_usd=cost, cost_status="priced"))
    LLMCall.objects.bulk_create(rows)
    rollup_pending()
    return plan


@pytest.mark.django_db
def test_sessions_with_one_row_are_read_as_they_are_and_the_others_summed_to_the_same_top(org, team, sessions):
    shared = dict(DailySessionSpend.objects.values_list("session", "shared").distinct())
    assert not shared["one-0"] and not shared["day-0"]  # one row: the whole session
    assert shared["days-0"] and shared["teams-0"] and shared["slow-burner"]
    for start, end in [*RANGES, (DAY + timedelta(days=1), DAY + timedelta(days=2))]:
        for scope in (Scope(org.id), Scope(org.id, team_ids=(team.id,))):
            expected = _sorted_like_the_page(raw_callers(scope, start, end, "session"), "session")
            for limit in (3, 10, 100):
                assert queries.top_callers(scope, start, end, "session", limit) == expected[:limit], (start, limit)
    top = queries.top_callers(Scope(org.id), DAY, DAY + timedelta(days=3), "session", 1)
    assert top[0]["session"] == "slow-burner" and top[0]["calls"] == 24


@pytest.mark.django_db
def test_a_session_that_comes_back_another_day_is_summed_from_then_on(org, team, sessions):
    assert not DailySessionSpend.objects.get(session="one-0").shared
    first = LLMCall.objects.get(session="one-0")
    LLMCall.objects.create(organization=org, trace_id="e" * 32, span_id="e" * 16, team=team, session="one-0",
                           start_time=first.start_time + timedelta(days=1), duration_ms=100, provider="openai",
                           request_model="gpt-4o-mini", cost_usd=Decimal("5"), cost_status="priced")
    rollup_pending()
    assert [row.shared for row in DailySessionSpend.objects.filter(session="one-0")] == [True, True]
    top = queries.top_callers(Scope(org.id), DAY, DAY + timedelta(days=4), "session", 1)
    assert (top[0]["session"], top[0]["calls"], top[0]["cost_usd"]) == ("one-0", 2, Decimal("5") + first.cost_usd)


@pytest.fixture
def weeks_of_users(org, team, other_team):
    """Four weeks of end users coming back day after day in two teams: a month's users page reads whole weeks."""
    rng = random.Random(17)
    rows = []
    for i in range(900):
        start = DAY + timedelta(minutes=rng.uniform(0, 27 * 24 * 60))  # DAY is a Monday
        user = rng.choice(["ann", "ben", "cat", "dan", "eve", "fay", ""])
        rows.append(LLMCall(
            organization=org, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", start_time=start, duration_ms=300,
            provider="openai", operation="chat", request_model="gpt-4o-mini", response_model="gpt-4o-mini",
            input_tokens=500 + i, output_tokens=20, status="error" if i % 13 == 0 else "ok",
            team=team if i % 3 else other_team, end_user=user,
            cost_usd=None if user == "fay" and i % 2 else Decimal(rng.randint(1, 5000)) / 10**6, cost_status="priced"))
    LLMCall.objects.bulk_create(rows)
    rollup_pending()
    return rows


@pytest.mark.django_db
def test_end_users_over_weeks_read_whole_weeks_and_equal_the_raw_calls(org, team, weeks_of_users):
    from billing.models import WeeklyEndUserSpend

    assert set(WeeklyEndUserSpend.objects.values_list("week", flat=True)) == {
        (DAY + timedelta(weeks=n)).date() for n in range(4)}
    ranges = [(DAY, DAY + timedelta(days=28)), (DAY + timedelta(days=3), DAY + timedelta(days=24)),
              (DAY + timedelta(days=6, hours=5), DAY + timedelta(days=15, hours=2)),
              (DAY + timedelta(days=8), DAY + timedelta(days=12))]
    for start, end in ranges:
        for scope in (Scope(org.id), Scope(org.id, team_ids=(team.id,))):
            assert queries.top_callers(scope, start, end, "end_user") == _sorted_like_the_page(
                raw_callers(scope, start, end, "end_user"), "end_user"), (start, end)


@pytest.mark.django_db
def test_a_late_call_in_a_past_week_reaches_its_weekly_row(org, team, weeks_of_users):
    LLMCall.objects.create(organization=org, trace_id="d" * 32, span_id="d" * 16, team=team, end_user="zed",
                           start_time=DAY + timedelta(days=9, hours=4), duration_ms=100, provider="openai",
                           request_model="gpt-4o-mini", cost_usd=Decimal("7"), cost_status="priced")
    rollup_pending()
    top = queries.top_callers(Scope(org.id), DAY, DAY + timedelta(days=28), "end_user", 1)
    assert (top[0]["end_user"], top[0]["calls"], top[0]["cost_usd"]) == ("zed", 1, Decimal("7"))
