"""Hourly/daily rollups and the queries on them, checked against the raw calls they summarize."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Q, Sum

from billing import queries
from billing.models import DailyRollup, HourlyRollup
from billing.rollups import rollup_hours, rollup_pending
from ingest.models import LLMCall
from observatory.access import Scope

DAY = datetime(2026, 11, 16, tzinfo=UTC)


def _calls(org, team, other_team, n=600, seed=3):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        start = DAY + timedelta(minutes=rng.uniform(0, 3 * 24 * 60))
        team_pick = team if i % 3 else other_team
        model = rng.choice(["gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929"])
        failed = rng.random() < 0.05
        rows.append(LLMCall(
            organization=org, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", start_time=start,
            duration_ms=rng.lognormvariate(6.5, 0.6), ttft_ms=rng.lognormvariate(5, 0.5) if i % 2 else None,
            provider="openai" if model.startswith("gpt") else "anthropic", operation="chat", request_model=model,
            response_model=model, input_tokens=1000 + i, cached_input_tokens=500 if i % 4 == 0 else 0, output_tokens=50 + i % 7,
            streaming=bool(i % 2), status="error" if failed else "ok", team=team_pick, environment="production",
            feature="answer", cost_usd=Decimal("0.0012345678") + Decimal(i) / 10**7, cost_status="priced",
        ))
    LLMCall.objects.bulk_create(rows)
    return rows


@pytest.fixture
def dataset(org, team, other_team):
    return _calls(org, team, other_team)



@pytest.mark.django_db
def test_hourly_and_daily_rollups_add_up_to_the_calls(org, dataset):
    result = rollup_pending()
    assert result["hours"] == 72
    raw_cost = LLMCall.objects.aggregate(c=Sum("cost_usd"))["c"]
    assert HourlyRollup.objects.aggregate(c=Sum("cost_usd"))["c"] == raw_cost
    assert DailyRollup.objects.aggregate(c=Sum("cost_usd"))["c"] == raw_cost
    assert HourlyRollup.objects.aggregate(n=Sum("calls"))["n"] == 600
    assert DailyRollup.objects.aggregate(n=Sum("input_tokens"))["n"] == LLMCall.objects.aggregate(n=Sum("input_tokens"))["n"]
    assert DailyRollup.objects.aggregate(n=Sum("errors"))["n"] == LLMCall.objects.filter(status="error").count()


@pytest.mark.django_db
def test_running_twice_changes_nothing(org, dataset):
    rollup_pending()
    first = list(HourlyRollup.objects.order_by("hour", "team_id", "model").values_list("hour", "team_id", "model", "calls", "cost_usd"))
    rollup_hours(org.id, [DAY + timedelta(hours=h) for h in range(72)])
    rollup_pending()
    again = list(HourlyRollup.objects.order_by("hour", "team_id", "model").values_list("hour", "team_id", "model", "calls", "cost_usd"))
    assert again == first


@pytest.mark.django_db
def test_a_crash_halfway_then_a_rerun_gives_the_same_totals(org, dataset, monkeypatch):
    import billing.rollups as rollups

    real = rollups.rollup_hours
    calls = {"n": 0}

    def flaky(org_id, hours):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("worker killed")  # not an error the job isolates: the process is gone
        return real(org_id, hours)

    monkeypatch.setattr(rollups, "rollup_hours", flaky)
    with pytest.raises(SystemExit):
        rollups.rollup_pending(hours_per_transaction=24)
    monkeypatch.setattr(rollups, "rollup_hours", real)
    rollups.rollup_pending()
    assert HourlyRollup.objects.aggregate(c=Sum("cost_usd"))["c"] == LLMCall.objects.aggregate(c=Sum("cost_usd"))["c"]
    assert DailyRollup.objects.aggregate(n=Sum("calls"))["n"] == 600


@pytest.mark.django_db
def test_a_late_call_for_a_rolled_up_hour_is_included(org, team, dataset):
    rollup_pending()
    hour = DAY + timedelta(hours=5)
    before = HourlyRollup.objects.filter(hour=hour).aggregate(n=Sum("calls"))["n"] or 0
    LLMCall.objects.create(organization=org, trace_id="f" * 32, span_id="f" * 16, start_time=hour + timedelta(minutes=3),
                           duration_ms=100, provider="openai", request_model="gpt-4o-mini", team=team,
                           cost_usd=Decimal("1.5"), cost_status="priced")
    rollup_pending()
    assert HourlyRollup.objects.filter(hour=hour).aggregate(n=Sum("calls"))["n"] == before + 1
    assert DailyRollup.objects.aggregate(c=Sum("cost_usd"))["c"] == LLMCall.objects.aggregate(c=Sum("cost_usd"))["c"]


@pytest.mark.django_db
def test_percentiles_from_rollups_are_within_2_5_percent_of_exact(org, dataset):
    rollup_pending()
    scope = Scope(org.id)
    start, end = DAY, DAY + timedelta(days=3)
    (row,) = queries.percentiles(scope, start, end, group_by=())
    exact = queries.exact_percentiles(scope, start, end)
    for q, value in zip(("p50", "p95", "p99"), exact, strict=True):
        assert abs(row[q] - value) / value <= 0.025, (q, row[q], value)
    (ttft,) = queries.percentiles(scope, start, end, group_by=(), metric="ttft")
    assert ttft["count"] == 300
    exact_ttft = queries.exact_percentiles(scope, start, end, column="ttft_ms")
    assert abs(ttft["p99"] - exact_ttft[2]) / exact_ttft[2] <= 0.025


@pytest.mark.django_db
def test_spend_over_partial_days_matches_raw_calls_and_respects_team_scope(org, team, dataset):
    rollup_pending()
    start, end = DAY + timedelta(hours=7), DAY + timedelta(days=2, hours=15)
    team_rows = queries.spend(Scope(org.id, team_ids=(team.id,)), start, end, group_by=["team"])
    assert [r["team_id"] for r in team_rows] == [team.id]
    raw = LLMCall.objects.filter(team=team, start_time__gte=start, start_time__lt=end)
    assert team_rows[0]["cost_usd"] == raw.aggregate(c=Sum("cost_usd"))["c"]
    assert team_rows[0]["calls"] == raw.count()
    assert team_rows[0]["cost_per_1k_calls"] == team_rows[0]["cost_usd"] * 1000 / raw.count()
    whole = queries.total(Scope(org.id), start, end)
    assert whole["calls"] == LLMCall.objects.filter(start_time__gte=start, start_time__lt=end).count()


@pytest.mark.django_db
def test_daily_timeseries_and_top_movers(org, team, other_team, dataset):
    rollup_pending()
    series = queries.timeseries(Scope(org.id), DAY, DAY + timedelta(days=3))
    assert [row["period"] for row in series] == [(DAY + timedelta(days=d)).date() for d in range(3)]
    assert sum(row["calls"] for row in series) == 600
    movers = queries.top_movers(Scope(org.id), DAY + timedelta(days=2), DAY + timedelta(days=3))
    for mover in movers:
        current = LLMCall.objects.filter(team_id=mover["team"], start_time__gte=DAY + timedelta(days=2),
                                         start_time__lt=DAY + timedelta(days=3)).aggregate(c=Sum("cost_usd"))["c"]
        assert mover["cost_usd"] == current


@pytest.mark.django_db
def test_org_wide_percentiles_by_model_read_the_model_histograms_and_agree(org, team, dataset):
    from billing.models import DailyModelLatency

    rollup_pending()
    assert DailyModelLatency.objects.count() == 3 * 2  # three days × two models
    start, end = DAY + timedelta(hours=3), DAY + timedelta(days=2, hours=20)
    by_model = {row["model"]: row for row in queries.percentiles(Scope(org.id), start, end, ["model"])}
    for model, row in by_model.items():
        calls = LLMCall.objects.filter(response_model=model, start_time__gte=start, start_time__lt=end)
        assert row["count"] == calls.count()
        durations = sorted(calls.values_list("duration_ms", flat=True))
        exact = durations[max(0, -(-99 * len(durations) // 100) - 1)]
        assert abs(row["p99"] - exact) / exact <= 0.025


@pytest.mark.django_db
def test_the_slowest_calls_of_a_range_come_from_the_hourly_top_ten(org, team, other_team):
    from billing.models import HourlySlowCall
    from observatory.dashboard.filters import Period
    from observatory.dashboard.latency import slowest_calls

    rng = random.Random(8)
    rows = [LLMCall(
        organization=org, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}",
        start_time=DAY + timedelta(minutes=rng.uniform(0, 180)), duration_ms=rng.lognormvariate(7, 1),
        provider="openai", operation="chat", request_model="gpt-4o", team=team if i % 3 else other_team,
        cost_usd=Decimal("0.001"), cost_status="priced") for i in range(400)]
    LLMCall.objects.bulk_create(rows)
    rollup_pending()
    # 3 hours × 2 teams, each group with more than 10 calls: 10 kept per group
    assert HourlySlowCall.objects.count() == 60
    period = Period("custom", DAY, DAY + timedelta(days=1))
    exact = sorted(rows, key=lambda call: -call.duration_ms)
    assert [c.span_id for c in slowest_calls(Scope(org.id), period)] == [c.span_id for c in exact[:10]]
    mine = [c for c in exact if c.team_id == team.id][:10]
    assert [c.span_id for c in slowest_calls(Scope(org.id, team_ids=(team.id,)), period)] == [c.span_id for c in mine]
    # one hour only, and a re-run replaces rather than adds
    first_hour = Period("custom", DAY, DAY + timedelta(hours=1))
    in_hour = [c for c in exact if c.start_time < DAY + timedelta(hours=1)][:10]
    assert [c.span_id for c in slowest_calls(Scope(org.id), first_hour)] == [c.span_id for c in in_hour]
    rollup_hours(org.id, [DAY, DAY + timedelta(hours=1)])
    assert HourlySlowCall.objects.count() == 60


@pytest.mark.django_db
def test_per_product_latency_histograms_match_the_full_rollups(org, team, other_team, dataset):
    from observatory.models import Product

    cart = Product.objects.create(organization=org, team=team, name="Cart", slug="cart")
    LLMCall.objects.filter(span_id__in=[c.span_id for c in dataset[::2]]).update(product=cart)
    rollup_pending()
    start, end = DAY, DAY + timedelta(days=3)
    org_wide = queries.percentiles(Scope(org.id), start, end, ("product",))  # per-product tables
    every_team = queries.percentiles(Scope(org.id, team_ids=(team.id, other_team.id)), start, end, ("product",))
    by_key = lambda rows: {row["product_id"]: row for row in rows}  # noqa: E731 (the two products tie on calls)
    assert by_key(org_wide) == by_key(every_team) and set(by_key(org_wide)) == {cart.id, None}
    assert sum(row["count"] for row in org_wide) == 600


@pytest.mark.django_db
def test_reads_by_team_and_model_take_whole_days_from_the_smaller_rollup_and_agree(org, team, dataset):
    from billing.models import DailyTeamModelRollup, DailyTeamModelSpend

    rollup_pending()
    assert 0 < DailyTeamModelRollup.objects.count() <= DailyRollup.objects.count()
    # the spend reads' narrow copy (no histograms) has the same rows and sums
    sums = ("day", "team_id", "product_id", "provider", "model", "calls", "errors", "cost_usd", "input_tokens",
            "output_tokens", "latency_sum_ms", "ttft_calls")
    assert sorted(DailyTeamModelSpend.objects.values_list(*sums), key=str) == \
        sorted(DailyTeamModelRollup.objects.values_list(*sums), key=str)
    start, end = DAY + timedelta(hours=7), DAY + timedelta(days=3)
    for scope in (Scope(org.id), Scope(org.id, team_ids=(team.id,))):
        calls = LLMCall.objects.filter(scope.q(), start_time__gte=start, start_time__lt=end)
        by_model = {r["model"]: (r["calls"], r["cost_usd"], r["errors"]) for r in queries.spend(scope, start, end, ["model"])}
        assert by_model == {r["response_model"]: (r["n"], r["c"], r["e"]) for r in calls.values("response_model").annotate(
            n=Count("id"), c=Sum("cost_usd"), e=Count("id", filter=Q(status="error"))).order_by()}
        daily = {r["period"]: r["calls"] for r in queries.timeseries(scope, start, end)}
        assert sum(daily.values()) == calls.count()
        (row,) = queries.percentiles(scope, DAY, end, group_by=())
        exact = queries.exact_percentiles(scope, DAY, end)
        assert abs(row["p99"] - exact[2]) / exact[2] <= 0.025
