"""Weekly latency histograms (billing.models.WeeklyModelLatency / WeeklyProductLatency): org-wide reads over many
days take whole UTC weeks from them; every figure must equal what the daily rows give."""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from billing import queries
from billing.models import DailyModelLatency, DailyProductLatency, WeeklyModelLatency, WeeklyProductLatency
from billing.rollups import merge_buckets, rollup_pending
from ingest.models import LLMCall
from observatory.access import Scope
from observatory.models import Product

MONDAY = datetime(2026, 10, 5, tzinfo=UTC)  # five weeks from here


@pytest.fixture
def five_weeks(org, team, other_team):
    rng = random.Random(11)
    products = [Product.objects.create(organization=org, team=team, name=f"P{i}", slug=f"p{i}") for i in range(3)]
    rows = []
    for i in range(900):
        model = rng.choice(["gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06"])
        rows.append(LLMCall(
            organization=org, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}",
            start_time=MONDAY + timedelta(minutes=rng.uniform(0, 35 * 24 * 60)),
            duration_ms=rng.lognormvariate(6.5, 0.8), ttft_ms=rng.lognormvariate(5, 0.5) if i % 2 else None,
            provider="openai" if model.startswith("gpt") else "anthropic", operation="chat", request_model=model,
            response_model=model, input_tokens=100, output_tokens=10, streaming=bool(i % 2), status="ok",
            team=team if i % 3 else other_team, product=rng.choice([*products, None]),
            cost_usd=Decimal("0.001"), cost_status="priced"))
    LLMCall.objects.bulk_create(rows)
    rollup_pending()
    return rows


def _merged_days(model, key_of, week: date) -> dict:
    days = model.objects.filter(day__gte=week, day__lt=week + timedelta(days=7))
    found: dict = {}
    for row in days:
        found.setdefault(key_of(row), {"latency": [], "ttft": [], "calls": 0})
        found[key_of(row)]["latency"].append(row.latency_buckets)
        found[key_of(row)]["ttft"].append(row.ttft_buckets)
        found[key_of(row)]["calls"] += row.calls
    return {key: (merge_buckets(v["latency"]), merge_buckets(v["ttft"]), v["calls"]) for key, v in found.items()}


def _weekly(model, key_of, week: date) -> dict:
    return {key_of(row): (merge_buckets([row.latency_buckets]), merge_buckets([row.ttft_buckets]), row.calls)
            for row in model.objects.filter(week=week)}


@pytest.mark.django_db
def test_each_week_is_its_days_merged(org, five_weeks):
    weeks = sorted(set(WeeklyModelLatency.objects.values_list("week", flat=True)))
    assert weeks == [(MONDAY + timedelta(weeks=n)).date() for n in range(5)]
    for week in weeks:
        assert _weekly(WeeklyModelLatency, lambda r: r.model, week) == \
            _merged_days(DailyModelLatency, lambda r: r.model, week)
        assert _weekly(WeeklyProductLatency, lambda r: r.product_id, week) == \
            _merged_days(DailyProductLatency, lambda r: r.product_id, week)
    assert sum(WeeklyModelLatency.objects.values_list("calls", flat=True)) == 900


RANGES = [
    (MONDAY, MONDAY + timedelta(weeks=5)),  # five whole weeks
    (MONDAY + timedelta(days=3), MONDAY + timedelta(days=30)),  # cuts the first and last week
    (MONDAY + timedelta(days=8, hours=5), MONDAY + timedelta(days=26, hours=17)),  # partial days at both ends
    (MONDAY + timedelta(days=9), MONDAY + timedelta(days=12)),  # inside one week
]


@pytest.mark.django_db
@pytest.mark.parametrize("start,end", RANGES)
@pytest.mark.parametrize("group", [("model",), ("product",), ()])
def test_org_wide_histograms_from_weeks_equal_the_team_rollups(org, team, other_team, five_weeks, start, end, group):
    org_wide = queries.histograms(Scope(org.id), start, end, group)  # weekly + daily + hourly latency tables
    every_team = queries.histograms(Scope(org.id, team_ids=(team.id, other_team.id)), start, end, group)
    assert org_wide == every_team
    calls = [c for c in five_weeks if start <= c.start_time < end]
    assert sum(sum(buckets.values()) for buckets in org_wide["latency"].values()) == len(calls)


@pytest.mark.django_db
def test_histograms_per_day_equal_the_daily_rows(org, five_weeks):
    start, end = MONDAY + timedelta(days=2, hours=6), MONDAY + timedelta(days=12)
    per_day = queries.histograms(Scope(org.id), start, end, (), per_day=True)
    for day_offset in range(3, 12):  # the whole days
        day = (MONDAY + timedelta(days=day_offset)).date()
        expected = merge_buckets(DailyModelLatency.objects.filter(day=day).values_list("latency_buckets", flat=True))
        assert per_day["latency"][(day,)] == expected
    first = [c for c in five_weeks if start <= c.start_time < MONDAY + timedelta(days=3)]
    assert sum(per_day["latency"][((MONDAY + timedelta(days=2)).date(),)].values()) == len(first)


@pytest.mark.django_db
def test_a_late_call_in_a_past_week_reaches_its_weekly_rows(org, team, five_weeks):
    week = (MONDAY + timedelta(weeks=1)).date()
    before = WeeklyModelLatency.objects.get(week=week, model="gpt-4o-2024-08-06").calls
    LLMCall.objects.create(
        organization=org, trace_id="f" * 32, span_id="f" * 16, start_time=MONDAY + timedelta(days=9, hours=2),
        duration_ms=123.0, provider="openai", operation="chat", request_model="gpt-4o-2024-08-06",
        response_model="gpt-4o-2024-08-06", team=team, cost_usd=Decimal("0.001"), cost_status="priced")
    rollup_pending()
    assert WeeklyModelLatency.objects.get(week=week, model="gpt-4o-2024-08-06").calls == before + 1
    assert _weekly(WeeklyProductLatency, lambda r: r.product_id, week) == \
        _merged_days(DailyProductLatency, lambda r: r.product_id, week)


@pytest.mark.django_db
def test_the_busiest_products_come_first_and_only_theirs_are_read(org, five_weeks):
    start, end = MONDAY, MONDAY + timedelta(weeks=5)
    counts: dict = {}
    for call in five_weeks:
        counts[call.product_id] = counts.get(call.product_id, 0) + 1
    ranked = sorted(counts, key=lambda key: (-counts[key], key is None, key))
    assert queries.busiest(Scope(org.id), start, end, "product", 2) == (ranked[:2], 4)
    found = queries.histograms(Scope(org.id), start, end, ("product",), only=ranked[:2])
    assert {key for (key,) in found["latency"]} == set(ranked[:2])
    assert {(key,): sum(b.values()) for (key,), b in found["latency"].items()} == {(k,): counts[k] for k in ranked[:2]}


def _raw_sums(calls, key_of):
    found: dict = {}
    for call in calls:
        row = found.setdefault(key_of(call), {"calls": 0, "cost_usd": Decimal(0), "input_tokens": 0, "errors": 0})
        row["calls"] += 1
        row["cost_usd"] += call.cost_usd
        row["input_tokens"] += call.input_tokens
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("start,end", RANGES)
def test_spend_over_weeks_equals_the_raw_calls(org, team, other_team, five_weeks, start, end):
    from billing.models import DailyTeamSpend, WeeklyTeamModelSpend

    assert WeeklyTeamModelSpend.objects.exists() and DailyTeamSpend.objects.exists()
    calls = [c for c in five_weeks if start <= c.start_time < end]
    model_of = {c.span_id: c.response_model for c in calls}
    for group_by, key_of in ((("team", "model"), lambda c: (c.team_id, model_of[c.span_id])),
                             (("team",), lambda c: (c.team_id,)), ((), lambda c: ())):
        for scope in (Scope(org.id), Scope(org.id, team_ids=(team.id,))):
            shown = {tuple(row[f"{g}_id" if g == "team" else g] for g in group_by):
                     {name: row[name] for name in ("calls", "cost_usd", "input_tokens", "errors")}
                     for row in queries.spend(scope, start, end, group_by)}
            mine = [c for c in calls if scope.team_ids is None or c.team_id in scope.team_ids]
            assert shown == _raw_sums(mine, key_of), (group_by, scope)
    per_day = {row["period"]: row["cost_usd"] for row in queries.timeseries(Scope(org.id), start, end, "day", (),
                                                                            ("cost_usd",))}
    raw_days: dict = {}
    for call in calls:
        raw_days[call.start_time.date()] = raw_days.get(call.start_time.date(), Decimal(0)) + call.cost_usd
    assert per_day == raw_days


@pytest.mark.django_db
def test_a_late_call_reaches_the_week_and_team_day_rows(org, team, five_weeks):
    from billing.models import DailyTeamSpend, WeeklyTeamModelSpend

    week, day = (MONDAY + timedelta(weeks=2)).date(), (MONDAY + timedelta(days=16)).date()
    weekly_before = sum(WeeklyTeamModelSpend.objects.filter(week=week).values_list("calls", flat=True))
    daily_before = sum(DailyTeamSpend.objects.filter(day=day, team=team).values_list("calls", flat=True))
    LLMCall.objects.create(
        organization=org, trace_id="e" * 32, span_id="e" * 16, start_time=MONDAY + timedelta(days=16, hours=3),
        duration_ms=50.0, provider="openai", operation="chat", request_model="gpt-4o-2024-08-06",
        response_model="gpt-4o-2024-08-06", team=team, cost_usd=Decimal("0.5"), cost_status="priced")
    rollup_pending()
    assert sum(WeeklyTeamModelSpend.objects.filter(week=week).values_list("calls", flat=True)) == weekly_before + 1
    assert sum(DailyTeamSpend.objects.filter(day=day, team=team).values_list("calls", flat=True)) == daily_before + 1
    start, end = MONDAY, MONDAY + timedelta(weeks=5)
    assert queries.spend(Scope(org.id), start, end)[0]["cost_usd"] == sum(c.cost_usd for c in five_weeks) + Decimal("0.5")
