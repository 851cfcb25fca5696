"""Budgets: calendar periods in a time zone, spend to date from rollups plus the tail, the forecast, and the
evaluation — thresholds, forecast-to-exceed before the money is gone, a month rolling over; and the form."""

# ruff: noqa: F811 (the shared fixture smtp is imported, then named as a test parameter)

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.alerts.budgets import (
    SpendScope,
    budget_status,
    evaluate_budget,
    evaluate_budgets,
    forecast_period_spend,
    period_bounds,
    spend_between,
    weekday_hour_profile,
)
from billing.forms import BudgetForm
from billing.models import Alert, Delivery
from billing.rollups import rollup_pending
from observatory.models import Organization, Product, Team
from tests.billing.test_alerts import add_spend, make_budget, smtp  # noqa: F401 (fixtures)

UTC_ZONE = ZoneInfo("UTC")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Periods -----------------------------------------------------------------------------------------------------------

def test_a_month_starts_at_local_midnight_of_the_first():
    # 03:30 UTC on 1 November is still 31 October in New York (EDT, UTC-4)
    assert period_bounds("month", "America/New_York", at(2026, 11, 1, 3, 30)) == (at(2026, 10, 1, 4), at(2026, 11, 1, 4))
    # and after midnight local the new month runs to 1 December 05:00 UTC (EST, UTC-5)
    assert period_bounds("month", "America/New_York", at(2026, 11, 1, 4, 30)) == (at(2026, 11, 1, 4), at(2026, 12, 1, 5))
    assert period_bounds("month", "UTC", at(2026, 12, 31, 23)) == (at(2026, 12, 1), at(2027, 1, 1))


def test_a_day_across_a_dst_change_lasts_25_hours_and_a_week_starts_on_monday():
    start, end = period_bounds("day", "America/New_York", at(2026, 11, 1, 12))
    assert end - start == timedelta(hours=25)
    assert period_bounds("week", "Europe/Paris", at(2026, 11, 18, 12)) == (at(2026, 11, 15, 23), at(2026, 11, 22, 23))
    assert period_bounds("day", "Asia/Kolkata", at(2026, 11, 18, 20)) == (at(2026, 11, 18, 18, 30), at(2026, 11, 19, 18, 30))


# Forecast (pure) ---------------------------------------------------------------------------------------------------

def _office_hours(start, end, dollars_per_hour):
    """Spend per hour, 09:00-17:00 on weekdays only."""
    hourly, hour = {}, start
    while hour < end:
        if hour.weekday() < 5 and 9 <= hour.hour < 17:
            hourly[hour] = Decimal(dollars_per_hour)
        hour += timedelta(hours=1)
    return hourly


def test_the_forecast_knows_the_weekend_is_quiet():
    week_start, week_end = at(2026, 11, 16), at(2026, 11, 23)  # Monday to Monday
    now = at(2026, 11, 20, 17)  # Friday after office hours
    hourly = _office_hours(week_start - timedelta(weeks=4), now, 2)  # $16 a weekday, $80 a week
    profile = weekday_hour_profile(hourly, week_start, UTC_ZONE)
    forecast = forecast_period_spend(Decimal(80), week_start, week_end, now, profile, hourly, UTC_ZONE)
    assert forecast.method == "weekday-hour profile" and forecast.history_weeks == 4
    assert forecast.amount_usd == Decimal(80)  # a flat 24-hour rate would say $116.67


def test_a_hotter_period_is_forecast_at_its_own_pace():
    week_start, week_end = at(2026, 11, 16), at(2026, 11, 23)
    now = at(2026, 11, 18, 12)  # Wednesday noon
    hourly = _office_hours(week_start - timedelta(weeks=3), week_start, 2) | _office_hours(week_start, now, 4)
    spent = sum(hourly[h] for h in hourly if h >= week_start)
    assert spent == Decimal(76)  # Monday and Tuesday at $32, Wednesday 09-12 at $12
    profile = weekday_hour_profile(hourly, week_start, UTC_ZONE)
    forecast = forecast_period_spend(spent, week_start, week_end, now, profile, hourly, UTC_ZONE)
    assert forecast.history_weeks == 3
    assert forecast.amount_usd == Decimal(160)  # twice the usual $80 week


def test_with_little_history_the_forecast_uses_the_last_24_hours():
    month_start, month_end = at(2026, 11, 1), at(2026, 12, 1)
    now = at(2026, 11, 10, 12)
    hourly = {month_start + timedelta(hours=h): Decimal("1.5") for h in range(9 * 24 + 12)}
    assert weekday_hour_profile(hourly, month_start, UTC_ZONE) is None
    forecast = forecast_period_spend(Decimal(342), month_start, month_end, now, None, hourly, UTC_ZONE)
    assert forecast.method == "last 24h rate"
    assert forecast.amount_usd == Decimal(342) + Decimal("1.5") * (20 * 24 + 12)


def test_no_spend_forecasts_no_spend():
    forecast = forecast_period_spend(Decimal(0), at(2026, 11, 1), at(2026, 12, 1), at(2026, 11, 10), None, {}, UTC_ZONE)
    assert forecast.amount_usd == 0


# Spend to date -----------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_spend_to_date_adds_rolled_up_hours_and_the_calls_not_rolled_up_yet(org, team, other_team):
    add_spend(org, "10.25", at(2026, 11, 3, 8, 15), team=team)
    add_spend(org, "4.75", at(2026, 11, 12, 23, 59), team=team)
    add_spend(org, 99, at(2026, 11, 12), team=other_team)
    add_spend(org, 50, at(2026, 10, 31, 23, 59), team=team)  # last month
    rollup_pending()
    add_spend(org, "0.10", at(2026, 11, 18, 9), team=team)  # arrives after the rollup
    scope = SpendScope(org.id, team_id=team.id)
    assert spend_between(scope, at(2026, 11, 1), at(2026, 11, 18, 10)) == Decimal("15.10")
    rollup_pending()  # once rolled up it is not counted twice
    assert spend_between(scope, at(2026, 11, 1), at(2026, 11, 18, 10)) == Decimal("15.10")


@pytest.mark.django_db
def test_a_period_starting_on_the_half_hour_counts_exactly_its_own_calls(org, team):
    add_spend(org, 7, at(2026, 11, 17, 18, 10), team=team)  # 23:40 in Kolkata, the day before
    add_spend(org, 3, at(2026, 11, 17, 18, 40), team=team)  # 00:10 in Kolkata
    rollup_pending()
    budget = make_budget(org, team=team, period="day", time_zone="Asia/Kolkata")
    assert budget_status(budget, at(2026, 11, 18, 6)).spend_usd == Decimal(3)


@pytest.mark.django_db
def test_product_and_team_product_budgets_count_only_their_calls(org, team, other_team):
    cart = Product.objects.create(organization=org, name="Cart", slug="cart")
    add_spend(org, 10, at(2026, 11, 5), team=team, product=cart)
    add_spend(org, 20, at(2026, 11, 5), team=other_team, product=cart)
    add_spend(org, 40, at(2026, 11, 5), team=team)
    now = at(2026, 11, 18)
    assert budget_status(make_budget(org, product=cart), now).spend_usd == Decimal(30)
    assert budget_status(make_budget(org, team=team, product=cart), now).spend_usd == Decimal(10)
    assert budget_status(make_budget(org, team=team), now).spend_usd == Decimal(50)
    assert budget_status(make_budget(org), now).spend_usd == Decimal(70)


# Evaluation --------------------------------------------------------------------------------------------------------

def _steady(org, team, dollars_per_hour, since, until):
    hour = since
    while hour < until:
        add_spend(org, dollars_per_hour, hour, team=team)
        hour += timedelta(hours=1)


@pytest.mark.django_db
def test_a_steady_rate_that_will_exceed_the_budget_alerts_before_the_spend_crosses_it(org, team, smtp):
    now = at(2026, 11, 10, 12)
    _steady(org, team, 1, at(2026, 11, 1), now)  # $1 an hour: $720 by the month end
    rollup_pending()
    budget = make_budget(org, team=team, amount_usd=Decimal(700), thresholds=[80, 100])
    (alert,) = evaluate_budget(budget, now)
    assert alert.kind == "forecast"
    assert alert.spend_usd == Decimal(228) and alert.spend_usd < budget.amount_usd
    assert alert.forecast_usd == Decimal(720)
    (message,) = smtp.messages
    assert message["Subject"] == "[Observatory] Search monthly: forecast to exceed the budget ($720.00 of $700.00)"
    assert evaluate_budget(budget, now + timedelta(hours=1)) == []  # once per period


@pytest.mark.django_db
def test_a_steady_rate_that_stays_under_the_budget_does_not_alert(org, team, smtp):
    now = at(2026, 11, 10, 12)
    _steady(org, team, 1, at(2026, 11, 1), now)
    rollup_pending()
    budget = make_budget(org, team=team, amount_usd=Decimal(750), thresholds=[80, 100])
    assert evaluate_budget(budget, now) == []
    assert budget_status(budget, now).forecast.amount_usd == Decimal(720)
    assert smtp.messages == []


@pytest.mark.django_db
def test_a_forecast_from_weeks_of_history_alerts_on_a_busier_month(org, team, smtp):
    now = at(2026, 11, 18, 12)
    _steady(org, team, 1, at(2026, 10, 11), at(2026, 11, 1))  # October: $1 an hour
    _steady(org, team, 2, at(2026, 11, 1), now)  # November runs at twice that
    rollup_pending()
    budget = make_budget(org, team=team, amount_usd=Decimal(1400), thresholds=[100])
    (alert,) = evaluate_budget(budget, now)
    assert alert.details["forecast_method"] == "weekday-hour profile"
    assert alert.spend_usd == Decimal(840)
    assert alert.forecast_usd == Decimal(1440)  # October's flat profile, at November's double pace


@pytest.mark.django_db
def test_crossing_several_thresholds_at_once_sends_only_the_highest(org, team, smtp):
    budget = make_budget(org, team=team, forecast_alert=False)
    add_spend(org, 85, at(2026, 11, 17), team=team)
    alerts = evaluate_budget(budget, at(2026, 11, 18))
    assert [a.threshold_percent for a in alerts] == [50, 80]
    assert Alert.objects.get(threshold_percent=50).suppressed.startswith("superseded by")
    assert list(Delivery.objects.values_list("alert__threshold_percent", flat=True)) == [80]
    add_spend(org, 20, at(2026, 11, 18), team=team)
    (over,) = evaluate_budget(budget, at(2026, 11, 18, 1))
    assert over.threshold_percent == 100
    assert [m["Subject"] for m in smtp.messages] == [
        "[Observatory] Search monthly: 80% of the budget reached ($85.00 of $100.00)",
        "[Observatory] Search monthly: 100% of the budget reached ($105.00 of $100.00)",
    ]


@pytest.mark.django_db
def test_a_month_rolls_over_the_budget_resets_and_alerts_again(org, team, smtp):
    budget = make_budget(org, team=team, time_zone="America/New_York", forecast_alert=False,
                         created_at=at(2026, 10, 2))
    add_spend(org, 120, at(2026, 10, 20), team=team)
    add_spend(org, 30, at(2026, 11, 1, 2), team=team)  # 22:00 on 31 October in New York: still October
    rollup_pending()

    october_end = at(2026, 11, 1, 3, 59)
    assert [a.threshold_percent for a in evaluate_budget(budget, october_end)] == [50, 80, 100]
    assert evaluate_budget(budget, october_end) == []

    november = at(2026, 11, 1, 4, 1)  # 00:01 in New York
    (reset,) = evaluate_budget(budget, november)
    assert reset.kind == "period_reset" and reset.period_start == at(2026, 11, 1, 4)
    assert reset.spend_usd == 0 and reset.details["previous_spend_usd"] == "150.0000000000"
    assert evaluate_budget(budget, november + timedelta(minutes=1)) == []

    add_spend(org, 60, at(2026, 11, 9), team=team)
    (again,) = evaluate_budget(budget, at(2026, 11, 9, 12))
    assert (again.kind, again.threshold_percent, again.spend_usd) == ("threshold", 50, Decimal(60))
    assert [m["Subject"] for m in smtp.messages] == [
        "[Observatory] Search monthly: 100% of the budget reached ($150.00 of $100.00)",
        "[Observatory] Search monthly: new period, budget reset",
        "[Observatory] Search monthly: 50% of the budget reached ($60.00 of $100.00)",
    ]


@pytest.mark.django_db
def test_a_quiet_period_resets_without_a_message(org, team, smtp):
    budget = make_budget(org, team=team, created_at=at(2026, 10, 2))
    (reset,) = evaluate_budget(budget, at(2026, 11, 1, 0, 1))
    assert reset.suppressed == "the previous period raised no alert"
    assert smtp.messages == [] and Delivery.objects.count() == 0


@pytest.mark.django_db
def test_the_beat_job_evaluates_active_budgets_only(org, team, smtp):
    make_budget(org, team=team, forecast_alert=False)
    make_budget(org, team=team, name="Paused", is_active=False)
    add_spend(org, 60, at(2026, 11, 17), team=team)
    assert evaluate_budgets(at(2026, 11, 18)) == {"budgets": 1, "alerts": 1, "errors": 0}


# The form ----------------------------------------------------------------------------------------------------------

def _form_data(**overrides):
    data = {"name": "Search monthly", "period": "month", "time_zone": "Europe/Paris", "amount_usd": "250.00",
            "thresholds": "50, 80, 100%", "forecast_alert": "on", "email_recipients": "a@example.com\nb@example.com",
            "slack_webhook_url": "", "webhook_url": "", "webhook_secret": "", "is_active": "on"}
    return data | overrides


@pytest.mark.django_db
def test_the_form_saves_a_valid_budget(org, team):
    form = BudgetForm(_form_data(team=team.pk), organization=org)
    assert form.is_valid(), form.errors
    budget = form.save()
    assert (budget.organization, budget.team, budget.amount_usd) == (org, team, Decimal("250.00"))
    assert budget.thresholds == [50, 80, 100] and budget.email_recipients == ["a@example.com", "b@example.com"]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), [
    ("amount_usd", "-5", "a budget is more than $0."),
    ("thresholds", "50, 1500", "threshold 1500% is out of range: use 1 to 1000 percent."),
    ("thresholds", "fifty", "thresholds are whole percentages separated by commas, e.g. 50, 80, 100."),
    ("webhook_url", "htp:/broken", "Enter a valid URL."),
    ("time_zone", "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not a known time zone: use an IANA name such as UTC or "
                                       "Europe/Paris."),
    ("email_recipients", "a@example.com, oncall@", "'oncall@' is not a valid email address."),
    ("email_recipients", "oncall@, a@example.com, bob", "'oncall@', 'bob' are not valid email addresses."),
    ("thresholds", "0, 50, 1500", "thresholds 0%, 1500% are out of range: use 1 to 1000 percent."),
])
def test_the_form_rejects_bad_input_with_a_clear_message(org, field, value, message):
    form = BudgetForm(_form_data(**{field: value}), organization=org)
    assert not form.is_valid()
    assert message in form.errors[field]


@pytest.mark.django_db
def test_the_form_rejects_a_team_of_another_organization_and_an_unsigned_webhook(org):
    elsewhere = Organization.objects.create(name="Globex", slug="globex")
    their_team = Team.objects.create(organization=elsewhere, name="Theirs", slug="theirs")
    form = BudgetForm(_form_data(team=their_team.pk, webhook_url="https://hooks.example.com/x", webhook_secret="short"),
                      organization=org)
    assert not form.is_valid()
    assert "Select a valid choice" in form.errors["team"][0]
    assert form.errors["webhook_secret"] == ["give a secret of at least 16 characters: webhook calls are signed with it."]
