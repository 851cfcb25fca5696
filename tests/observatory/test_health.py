import pytest
from django.db import connection


def test_healthz_answers_without_a_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_rejects_post(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_is_ok_with_database_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_readyz_stays_ready_and_counts_the_background_jobs_that_fail(client, org):
    from datetime import UTC, datetime

    from billing.alerts.budgets import evaluate_budgets
    from billing.rollups import rollup_pending
    from tests.billing.test_alerts import add_spend, make_budget

    add_spend(org, "0.01", datetime(9999, 12, 31, 23, 30, tzinfo=UTC))  # stored before ingest bounded times
    rollup_pending()
    make_budget(org, time_zone="Mars/Olympus_Mons")  # saved before time zones were checked
    evaluate_budgets()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "warnings": [
        "1 hour(s) could not be rolled up", "1 budget(s) or alert rule(s) could not be evaluated"]}


@pytest.mark.django_db(transaction=True)
def test_readyz_fails_when_the_database_is_down(client, tmp_path):
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = str(tmp_path)  # no server listens here
    connection.settings_dict["PORT"] = "5999"
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["problems"] == ["database unavailable: OperationalError"]
