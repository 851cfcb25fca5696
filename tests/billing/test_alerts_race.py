"""Exactly once with real Celery workers: three worker processes (real PostgreSQL, the filesystem broker)
race to evaluate the same budget crossing, or to retry the same failed deliveries, and the SMTP server and
the HTTP receiver get each message once. A table lock held by the test lines the racers up so that they
really reach the critical step together."""

# ruff: noqa: F811 (the shared fixtures smtp and receiver are imported, then named as test parameters)

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.alerts.budgets import evaluate_budget, period_bounds
from billing.models import Alert, Delivery
from observatory.celery import app
from tests.billing.test_alerts import SECRET, add_spend, make_budget, receiver, signature_is_valid, smtp  # noqa: F401 (fixtures)

WORKERS = 3
TASKS = 30
TIMEOUT = 90


def database_url() -> str:
    """The test database as a DATABASE_URL (a socket directory goes in the `host` query parameter)."""
    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    port = f":{db['PORT']}" if db["PORT"] else ""
    host = db["HOST"] or "localhost"
    if host.startswith("/"):
        return f"postgresql://{credentials}@{port}/{quote(db['NAME'])}?host={quote(host)}"
    return f"postgresql://{credentials}@{host}{port}/{quote(db['NAME'])}"


def broker_options(home: Path) -> dict:
    """The filesystem transport's folders, as settings.py derives them from OBSERVATORY_HOME."""
    broker = home / "broker"
    for folder in ("queue", "processed", "control"):
        (broker / folder).mkdir(parents=True, exist_ok=True)
    return {"data_folder_in": str(broker / "queue"), "data_folder_out": str(broker / "queue"),
            "processed_folder": str(broker / "processed"), "control_folder": str(broker / "control"),
            "store_processed": False, "polling_interval": 0.1}


def wait_for(check, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def waiting_for(cursor, table: str) -> int:
    """Backends waiting for a lock on `table` (pg_locks is read afresh on every query, unlike
    pg_stat_activity, whose snapshot is kept for the whole transaction)."""
    cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND relation = %s::regclass", [table])
    return cursor.fetchone()[0]


@pytest.fixture
def workers(transactional_db, tmp_path, smtp):
    """Three `celery worker` processes on the test database, each with one child and its own hostname."""
    home = tmp_path / "home"
    options = broker_options(home)
    env = {name: value for name, value in os.environ.items() if name not in ("CELERY_BROKER_URL", "SLACK_WEBHOOK_URL")}
    env |= {"DATABASE_URL": database_url(), "OBSERVATORY_HOME": str(home), "DJANGO_SETTINGS_MODULE": "observatory.settings",
            "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port), "SITE_URL": "https://observatory.example.com",
            "OBSERVATORY_WEBHOOK_ALLOW_PRIVATE": "true"}  # the receiver listens on 127.0.0.1
    processes, logs = [], []
    try:
        for n in range(WORKERS):
            log, ready = tmp_path / f"worker{n}.log", tmp_path / f"ready{n}"
            logs.append(log)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "observatory", "worker", "--concurrency", "1", "--hostname",
                 f"race{n}@%h", "--loglevel", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env=env | {"OBSERVATORY_WORKER_READY_FILE": str(ready)}, cwd=settings.BASE_DIR,
                stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
            ))
            # one at a time: workers declaring their queue at the same instant trip over the filesystem
            # transport's shared exchange file
            wait_for(ready.exists, f"worker {n} to start")
        yield {"options": options, "queue": home / "broker" / "queue", "logs": logs}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.slow
def test_racing_workers_deliver_one_alert_per_channel(org, team, workers, receiver, smtp, monkeypatch):
    budget = make_budget(org, receiver, team=team, amount_usd=Decimal(100), forecast_alert=False, created_at=timezone.now())
    now = timezone.now()
    start, _ = period_bounds("month", "UTC", now)
    add_spend(org, 120, max(start, now - timedelta(minutes=1)), team=team, calls=4)

    monkeypatch.setitem(app.conf, "broker_url", "filesystem://")
    monkeypatch.setitem(app.conf, "broker_transport_options", workers["options"])
    with transaction.atomic(), connection.cursor() as cursor:
        # Line the racers up: every worker gets past its reads and waits at the INSERT of the alert, then all
        # go at once when this lock is released. (SELECTs are not blocked by this lock mode; INSERTs are.)
        cursor.execute("LOCK TABLE billing_alert IN SHARE ROW EXCLUSIVE MODE")
        with app.connection_for_write() as broker:
            for _ in range(TASKS):
                app.send_task("billing.tasks.evaluate_all_budgets", connection=broker)
        wait_for(lambda: waiting_for(cursor, "billing_alert") == WORKERS, "every worker to reach the INSERT")

    wait_for(lambda: not any(workers["queue"].iterdir()), "the workers to take every task")
    wait_for(lambda: Delivery.objects.filter(status="sent").count() == 3, "the deliveries")
    time.sleep(2)  # let the last evaluations finish: a duplicate would show now

    assert len(smtp.messages) == 1
    assert smtp.messages[0]["Subject"] == "[Observatory] Search monthly: 100% of the budget reached ($120.00 of $100.00)"
    (slack,) = receiver.to("/slack")
    assert slack.json()["text"] == "Search monthly: 100% of the budget reached ($120.00 of $100.00)"
    (hook,) = receiver.to("/hook")
    assert signature_is_valid(hook, SECRET) and hook.json()["alert"]["budget_id"] == budget.pk
    assert sorted(Alert.objects.values_list("threshold_percent", flat=True)) == [50, 80, 100]
    assert sorted(Delivery.objects.values_list("channel", "status", "attempts")) == [
        ("email", "sent", 1), ("slack", "sent", 1), ("webhook", "sent", 1)]
    ran = [log.read_text().count("billing.tasks.evaluate_all_budgets") for log in workers["logs"]]
    assert sum(n > 0 for n in ran) >= 2, ran  # the work was really shared, i.e. raced


@pytest.mark.slow
def test_racing_retry_jobs_resend_a_failed_delivery_once(org, team, workers, receiver, smtp, monkeypatch):
    budget = make_budget(org, receiver, team=team, amount_usd=Decimal(100), forecast_alert=False, created_at=timezone.now())
    a_minute_ago = timezone.now() - timedelta(minutes=1)
    start, _ = period_bounds("month", "UTC", a_minute_ago)
    add_spend(org, 120, max(start, a_minute_ago - timedelta(minutes=1)), team=team)
    receiver.answers = {"/slack": [500], "/hook": [502]}
    evaluate_budget(budget, a_minute_ago)  # email sent; Slack and the webhook failed once and are due again by now
    assert sorted(Delivery.objects.values_list("channel", "status")) == [
        ("email", "sent"), ("slack", "pending"), ("webhook", "pending")]

    monkeypatch.setitem(app.conf, "broker_url", "filesystem://")
    monkeypatch.setitem(app.conf, "broker_transport_options", workers["options"])
    with transaction.atomic(), connection.cursor() as cursor:
        # every retry job lists the due deliveries, then waits here to claim them: all claim at once
        cursor.execute("LOCK TABLE billing_delivery IN EXCLUSIVE MODE")
        with app.connection_for_write() as broker:
            for _ in range(TASKS):
                app.send_task("billing.tasks.deliver_pending_alerts", connection=broker)
        wait_for(lambda: waiting_for(cursor, "billing_delivery") == WORKERS, "every worker to try a claim")

    wait_for(lambda: not any(workers["queue"].iterdir()), "the workers to take every task")
    wait_for(lambda: Delivery.objects.filter(status="sent").count() == 3, "the retries")
    time.sleep(2)

    assert len(receiver.to("/slack")) == 2 and len(receiver.to("/hook")) == 2  # the failure, then one retry each
    assert len(smtp.messages) == 1
    assert sorted(Delivery.objects.values_list("channel", "attempts")) == [("email", 1), ("slack", 2), ("webhook", 2)]
