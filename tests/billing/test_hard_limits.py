"""Hard budgets outside the gateway: set in the budget form and the API, shown on the budget page with the requests
refused this period, and counters that the reconciliation sets from the calls and that Redis or PostgreSQL add to
exactly."""

import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.alerts.budgets import period_bounds
from billing.limits import LimitBook, PostgresCounters, RedisCounters, book, reconcile
from billing.models import Budget, BudgetCounter, BudgetRefusal
from tests.billing.test_alerts import add_spend, make_budget
from tests.observatory.test_dashboard_budgets import budget_data, login, users  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def month_start() -> datetime:
    return period_bounds("month", "UTC", timezone.now())[0]


def test_a_manager_makes_their_teams_budget_a_hard_limit_in_the_form(client, team, users):  # noqa: F811
    login(client, users, "manager")
    response = client.post("/budgets/", budget_data(team=team.id, hard_limit="on"))

    assert response.status_code == 302
    assert Budget.objects.get().hard_limit is True
    page = client.get(response["Location"]).content.decode()
    assert "Hard limit: once the period's spend reaches $100.00, the gateway refuses calls" in page
    assert "Refused this period: <strong>0</strong> requests" in page


def test_the_budget_page_counts_the_requests_refused_this_period_only(client, org, team, users):  # noqa: F811
    budget = make_budget(org, team=team, hard_limit=True)
    start = month_start()
    BudgetRefusal.objects.create(budget=budget, hour=start, refused=3)
    BudgetRefusal.objects.create(budget=budget, hour=start + timedelta(hours=5), refused=4)
    BudgetRefusal.objects.create(budget=budget, hour=start - timedelta(hours=1), refused=50)  # last period

    page = login(client, users, "viewer").get(f"/budgets/{budget.id}/").content.decode()

    assert "Refused this period: <strong>7</strong> requests" in page


def test_a_soft_budget_page_says_nothing_of_a_limit(client, org, team, users):  # noqa: F811
    budget = make_budget(org, team=team)
    assert "Hard limit" not in login(client, users, "viewer").get(f"/budgets/{budget.id}/").content.decode()


def test_the_budgets_list_marks_the_hard_limits(client, org, team, users):  # noqa: F811
    make_budget(org, team=team, hard_limit=True, name="Capped")
    make_budget(org, team=team, name="Watched")
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in
            login(client, users, "viewer").get("/budgets/").content.decode().split("<tr")[1:] if "</a>" in row}
    assert "hard limit</span>" in rows["Capped"] and "hard limit</span>" not in rows["Watched"]


def test_the_api_sets_and_clears_the_hard_limit(client, org, users):  # noqa: F811
    client.force_login(users["admin"])
    created = client.post("/api/v1/budgets", {"name": "Org monthly", "period": "month", "time_zone": "UTC",
                                              "amount_usd": "50.00", "hard_limit": True}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["hard_limit"] is True
    changed = client.patch(f"/api/v1/budgets/{created.json()['id']}", {"hard_limit": False},
                           content_type="application/json")
    assert changed.status_code == 200 and changed.json()["hard_limit"] is False
    assert Budget.objects.get().hard_limit is False
    bad = client.patch(f"/api/v1/budgets/{created.json()['id']}", {"hard_limit": "sometimes"},
                       content_type="application/json")
    assert bad.status_code == 400 and "hard_limit" in bad.json()


def test_reconciliation_sets_each_limit_counter_to_its_periods_spend(org, team, other_team):
    limit = make_budget(org, name="Search", team=team, amount_usd=Decimal(10), hard_limit=True)
    make_budget(org, name="Soft", amount_usd=Decimal(10))
    now = timezone.now()
    add_spend(org, "2.50", now - timedelta(minutes=1), team=team)
    add_spend(org, "4.00", now - timedelta(minutes=1), team=other_team)
    add_spend(org, "9.00", month_start() - timedelta(minutes=1), team=team)  # last month
    PostgresCounters().add({(limit.pk, month_start()): Decimal("99")})  # drifted

    assert reconcile() == 1

    counter = BudgetCounter.objects.get()
    assert (counter.budget_id, counter.period_start, counter.spent_usd) == (limit.pk, month_start(), Decimal("2.50"))


def test_a_stored_calls_cost_reaches_the_counter_of_every_limit_it_falls_under(org, team, other_team):
    search = make_budget(org, name="Search", team=team, amount_usd=Decimal(10), hard_limit=True)
    whole = make_budget(org, name="Org", amount_usd=Decimal(20), hard_limit=True)
    book.read_org(org.pk)
    now = datetime.now(UTC)

    book.record_spend(org.pk, [(team.pk, None, now, Decimal("1.25")), (other_team.pk, None, now, Decimal("0.5")),
                               (team.pk, None, month_start() - timedelta(seconds=1), Decimal("100"))])

    fresh = LimitBook()  # another process
    fresh.read_org(org.pk)
    assert fresh.spent[(search.pk, month_start())] == Decimal("1.25")
    assert fresh.spent[(whole.pk, month_start())] == Decimal("1.75")
    assert fresh.check(org.pk, "", "", team.pk, None) is None
    book.record_spend(org.pk, [(team.pk, None, now, Decimal("8.75"))])
    fresh.refresh()
    refusal = fresh.check(org.pk, "search", "", None, None)
    assert (refusal.budget_name, refusal.spent_usd) == ("Search", Decimal("10.00"))
    assert fresh.check(org.pk, other_team.slug, "", None, None) is None  # $10.50 of the organization's $20


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


def test_redis_counters_add_exact_cents_and_are_read_once_reconciled(redis_url):
    counters, other = RedisCounters(redis_url), RedisCounters(redis_url)
    key = (7, datetime(2026, 12, 1, tzinfo=UTC))

    counters.add({key: Decimal("0.0001542")})
    assert other.read([key]) == {}  # never reconciled: an increment alone is not the period's spend
    other.set(key, Decimal("9.99"))
    counters.add({key: Decimal("0.0001542")})
    counters.add({key: Decimal("0.0000001")})

    assert other.read([key]) == {key: Decimal("9.9901543")}


def test_redis_is_used_when_the_broker_is_redis(settings, redis_url):
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = redis_url
    from billing.limits import make_counters

    assert isinstance(make_counters(), RedisCounters)
    settings.CELERY_BROKER_URL = "filesystem://"
    assert isinstance(make_counters(), PostgresCounters)


def test_a_viewer_cannot_turn_a_limit_off(client, org, team, users):  # noqa: F811
    budget = make_budget(org, team=team, hard_limit=True)
    login(client, users, "viewer")
    response = client.post(f"/budgets/{budget.id}/", budget_data(team=team.id))
    assert response.status_code == 403
    budget.refresh_from_db()
    assert budget.hard_limit is True
