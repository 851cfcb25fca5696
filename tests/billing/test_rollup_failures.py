"""One bad row must not poison everyone: a call the rollup job cannot roll up (dated 9999, stored before ingest
bounded times) stops neither other organizations nor its own organization's other hours, is recorded where users
see it, and budgets count every call once however far behind the rollup job is."""

# ruff: noqa: F811 (the shared fixture smtp is imported, then named as a test parameter)

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing.alerts.budgets import SpendScope, budget_status, evaluate_budgets, hourly_spend, spend_between
from billing.models import Alert, Budget, HourlyRollup, RollupState
from billing.rollups import rollup_pending
from ingest.models import LLMCall
from observatory.models import Organization
from tests.billing.test_alerts import add_spend, make_budget, smtp  # noqa: F401 (fixtures)

NOW = datetime(2026, 11, 18, 12, tzinfo=UTC)
YEAR_9999 = datetime(9999, 12, 31, 23, 30, tzinfo=UTC)


@pytest.fixture
def other_org(db):
    return Organization.objects.create(name="Globex", slug="globex")


def _thirty_dollars(org, team):
    for hour, dollars in ((9, "10.00"), (10, "12.50"), (11, "7.50")):
        add_spend(org, dollars, NOW.replace(hour=hour, minute=20), team=team)


def _bad_row(org):
    """A call dated 9999, as the REST API accepted them before it bounded times like OTLP."""
    add_spend(org, "0.01", YEAR_9999)


def _rolled_cost(org) -> Decimal:
    return HourlyRollup.objects.filter(organization=org).aggregate(c=Sum("cost_usd"))["c"] or Decimal(0)


@pytest.mark.django_db
def test_a_call_the_rollup_cannot_handle_stops_neither_other_organizations_nor_its_other_hours(org, team, other_org):
    _thirty_dollars(org, team)
    add_spend(other_org, "4.00", NOW.replace(hour=8))
    _bad_row(other_org)

    result = rollup_pending()

    assert (result["hours"], result["failed_hours"]) == (4, 1)
    assert _rolled_cost(org) == Decimal("30.00")
    assert _rolled_cost(other_org) == Decimal("4.00")  # its good hour is rolled up
    state = RollupState.objects.get(organization=other_org)
    assert list(state.failed_hours) == ["9999-12-31T23:00:00+00:00"]
    assert state.failed_hours["9999-12-31T23:00:00+00:00"].startswith("OverflowError")
    assert RollupState.objects.get(organization=org).failed_hours == {}

    add_spend(other_org, "1.00", NOW.replace(hour=8, minute=45))  # later calls keep being rolled up
    assert rollup_pending()["failed_hours"] == 1  # the bad hour is retried, and still reported
    assert _rolled_cost(other_org) == Decimal("5.00")


@pytest.mark.django_db
def test_a_budget_reads_the_real_30_dollars_and_raises_no_false_100_percent_alert(org, team, other_org, smtp):
    budget = make_budget(org, team=team, amount_usd=Decimal("60"))  # thresholds 50/80/100 %
    _thirty_dollars(org, team)
    _bad_row(other_org)  # the organization rolled up after this one fails
    rollup_pending()

    assert budget_status(budget, NOW).spend_usd == Decimal("30.00")
    evaluate_budgets(NOW)
    thresholds = Alert.objects.filter(budget=budget, kind=Alert.Kind.THRESHOLD)
    assert list(thresholds.values_list("threshold_percent", "spend_usd")) == [(50, Decimal("30.00"))]


@pytest.mark.django_db
def test_budgets_count_each_call_once_when_the_watermark_is_behind(org, team):
    _thirty_dollars(org, team)
    rollup_pending()
    # the job committed its rollups but died before moving the watermark
    RollupState.objects.filter(organization=org).update(watermark=datetime(2026, 11, 1, tzinfo=UTC))
    scope = SpendScope(org.id, team_id=team.id)
    assert spend_between(scope, datetime(2026, 11, 1, tzinfo=UTC), NOW) == Decimal("30.00")
    assert hourly_spend(scope, NOW.replace(hour=0), NOW) == {
        NOW.replace(hour=9): Decimal("10.00"), NOW.replace(hour=10): Decimal("12.50"), NOW.replace(hour=11): Decimal("7.50")}

    add_spend(org, "2.00", NOW.replace(hour=10, minute=50), team=team)  # a late call for a rolled-up hour
    assert spend_between(scope, datetime(2026, 11, 1, tzinfo=UTC), NOW) == Decimal("32.00")


@pytest.mark.django_db
def test_a_repriced_call_counts_at_its_new_price_only_before_the_next_rollup(org, team):
    _thirty_dollars(org, team)
    rollup_pending()
    call = LLMCall.objects.get(start_time=NOW.replace(hour=10, minute=20))
    LLMCall.objects.filter(pk=call.pk).update(cost_usd=Decimal("2.50"), ingested_at=datetime.now(UTC))  # as reprice does
    scope = SpendScope(org.id, team_id=team.id)
    assert spend_between(scope, datetime(2026, 11, 1, tzinfo=UTC), NOW) == Decimal("20.00")
    rollup_pending()
    assert spend_between(scope, datetime(2026, 11, 1, tzinfo=UTC), NOW) == Decimal("20.00")


@pytest.mark.django_db
def test_a_budget_that_cannot_be_evaluated_is_shown_and_the_others_go_on(org, team, smtp):
    broken = make_budget(org, name="Broken", time_zone="Mars/Olympus_Mons")  # saved before time zones were checked
    working = make_budget(org, team=team, name="Search", amount_usd=Decimal("20"))
    _thirty_dollars(org, team)
    rollup_pending()

    counts = evaluate_budgets(NOW)
    assert (counts["budgets"], counts["errors"]) == (2, 1)
    broken.refresh_from_db()
    assert broken.evaluation_error.startswith("ZoneInfoNotFoundError")
    assert broken.evaluation_failing_since is not None
    assert Alert.objects.get(budget=working, kind=Alert.Kind.THRESHOLD, threshold_percent=100).spend_usd == Decimal("30.00")

    Budget.objects.filter(pk=broken.pk).update(time_zone="UTC")
    evaluate_budgets(NOW)
    broken.refresh_from_db()
    assert (broken.evaluation_error, broken.evaluation_failing_since) == ("", None)
