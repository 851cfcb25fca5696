"""Security promises that are not about one page: DEBUG is off wherever the product runs, errors are our own
pages (a 503 that says the database is away, never a traceback or the URL list), production turns on HSTS and
the HTTPS redirect, and logins are throttled per account and per address."""

import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from observatory.config import load_config
from tests.observatory.test_dashboard_seed import Seed, seed

PASSWORD = "correct horse battery staple"


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def _settings_in_a_fresh_process(**env) -> dict:
    """Read a few settings the way `observatory up`, gunicorn or docker compose load them."""
    code = ("import django, json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'observatory.settings'; django.setup();"
            "from django.conf import settings as s;"
            "print(json.dumps([s.DEBUG, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER]))")
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_ENV", "OBSERVATORY_ENV")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    import json

    debug, redirect, hsts, proxy = json.loads(out.stdout)
    return {"debug": debug, "ssl_redirect": redirect, "hsts": hsts, "proxy_header": proxy}


def test_debug_is_off_unless_asked_for():
    assert load_config({"HOME": "/tmp"}).debug is False
    assert load_config({"HOME": "/tmp", "DEBUG": "true"}).debug is True
    assert _settings_in_a_fresh_process()["debug"] is False


def test_production_turns_on_hsts_and_the_https_redirect_and_a_local_run_does_not():
    local = _settings_in_a_fresh_process()
    assert (local["ssl_redirect"], local["hsts"]) == (False, 0)
    production = _settings_in_a_fresh_process(DJANGO_ENV="production", SECRET_KEY="x" * 40, ALLOWED_HOSTS="obs.example.com")
    assert production == {"debug": False, "ssl_redirect": True, "hsts": 31_536_000,
                          "proxy_header": ["HTTP_X_FORWARDED_PROTO", "https"]}
    off = _settings_in_a_fresh_process(DJANGO_ENV="production", SECRET_KEY="x" * 40, ALLOWED_HOSTS="obs.example.com",
                                       OBSERVATORY_SSL_REDIRECT="false", OBSERVATORY_HSTS_SECONDS="0")
    assert (off["ssl_redirect"], off["hsts"]) == (False, 0)


@pytest.mark.django_db
def test_behind_a_tls_proxy_http_is_redirected_and_https_gets_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS = True, 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = client.get("/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/login/"
    secure = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    assert client.get("/healthz").status_code == 200  # load balancer probes stay on plain HTTP
    # so do exporters inside the network (the compose Collector posts to http://web:8000): no redirect of a POST
    assert client.post("/v1/traces", b"", content_type="application/x-protobuf").status_code == 401


@pytest.mark.django_db
def test_another_teams_page_is_our_404_without_the_url_list(client, data):
    response = data.login(client, "search_viewer").get("/teams/ads/")
    assert response.status_code == 404
    assert b"belongs to a team you are not a member of" in response.content
    assert b"URLconf" not in response.content and b"teams/&lt;slug" not in response.content


@pytest.mark.django_db
def test_a_failing_page_is_our_500_without_a_traceback(data, settings):
    settings.ROOT_URLCONF = "tests.observatory.error_urls"
    client = data.login(Client(raise_request_exception=False), "admin")
    response = client.get("/boom/")
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert b"Traceback" not in response.content and b"sk-live-0000" not in response.content


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/", "/calls/", "/budgets/", "/settings/", "/admin/"])
def test_pages_answer_503_with_retry_after_while_the_database_is_down(data, path, tmp_path):
    client = data.login(Client(raise_request_exception=False), "admin")
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = str(tmp_path)  # no server listens here
    connection.settings_dict["PORT"] = "5999"
    try:
        response = client.get(path)
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"The database is not answering" in response.content
    assert b"Traceback" not in response.content


# Login throttling ----------------------------------------------------------------------------------------------

def _try(client, username, password, address="203.0.113.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.fixture
def accounts(db, settings):
    settings.AXES_FAILURE_LIMIT = 10
    users = get_user_model()
    return users.objects.create_user("mona", password=PASSWORD), users.objects.create_user("vera", password=PASSWORD)


def test_wrong_passwords_lock_the_account_and_then_the_right_one_is_refused_too(client, accounts, caplog):
    for _ in range(9):
        assert _try(client, "mona", "guess").status_code == 200  # the form again, with the usual error
    with caplog.at_level(logging.WARNING):
        locked = _try(client, "mona", "guess")
    assert locked.status_code == 429
    assert b"Too many failed log-in attempts" in locked.content
    assert int(locked["Retry-After"]) == 15 * 60
    assert any("login locked out" in record.getMessage() and "mona" in record.getMessage() for record in caplog.records)

    right = _try(client, "mona", PASSWORD, address="198.51.100.9")  # the right password, from another address
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    assert _try(Client(), "vera", PASSWORD, address="198.51.100.9").status_code == 302  # other accounts log in


def test_one_address_trying_many_accounts_is_locked_out(client, accounts):
    for attempt in range(10):
        _try(client, f"user{attempt}", "guess", address="192.0.2.50")
    assert _try(client, "vera", PASSWORD, address="192.0.2.50").status_code == 429
    assert _try(Client(), "vera", PASSWORD, address="192.0.2.51").status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, accounts):
    for _ in range(10):
        _try(client, "mona", "guess")
    assert _try(client, "mona", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time - timedelta(minutes=16))
    assert _try(client, "mona", PASSWORD).status_code == 302
