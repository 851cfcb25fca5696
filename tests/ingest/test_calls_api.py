"""REST API for calls: POST a batch with an API key, GET with filters and a cursor, scoped to the requester."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from billing.pricing.at_ingest import catalog_cache
from billing.services import load_default_catalog
from ingest.models import LLMCall
from observatory.models import Membership, Role
from observatory.services import create_api_key

START = datetime(2026, 11, 20, 9, tzinfo=UTC)


@pytest.fixture
def priced(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)


def _call(i=0, **extra):
    return {
        "trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "start_time": (START + timedelta(minutes=i)).isoformat(),
        "duration_ms": 900, "provider": "openai", "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18", "input_tokens": 1200, "cached_input_tokens": 1024,
        "output_tokens": 85, "reasoning_tokens": 64, **extra,
    }


def _post(client, key, payload):
    return client.post("/api/v1/calls", payload, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.django_db
def test_it_accepts_a_batch_and_prices_it(client, api_key, priced):
    response = _post(client, api_key.plaintext, {"calls": [_call(0), _call(1, team="checkout", product="cart")]})
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 2, "duplicates": 0}
    call = LLMCall.objects.get(span_id=f"{2:016x}")
    assert call.team.slug == "checkout" and call.product.slug == "cart"
    assert call.cost_usd == Decimal("0.0001542") and call.cost_status == "priced"
    assert call.source == "rest-api"


@pytest.mark.django_db
def test_a_reposted_batch_is_not_double_counted(client, api_key, priced):
    payload = [_call(0), _call(1)]
    assert _post(client, api_key.plaintext, payload).json() == {"accepted": 2, "duplicates": 0}
    assert _post(client, api_key.plaintext, payload).json() == {"accepted": 0, "duplicates": 2}
    assert LLMCall.objects.count() == 2


@pytest.mark.django_db
def test_it_rejects_bad_calls_with_field_errors_and_stores_none(client, api_key):
    response = _post(client, api_key.plaintext, {"calls": [_call(0), _call(1, input_tokens=-3, trace_id="xyz")]})
    assert response.status_code == 400
    errors = response.json()["calls"]["1"]  # keyed by the position of the bad call
    assert "input_tokens" in errors and "trace_id" in errors
    assert LLMCall.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("start_time", "message"), [
    ("9999-12-31T23:00:00Z", "is more than a day in the future"),
    ("1999-12-31T23:59:59Z", "is before 2000-01-01"),
])
def test_it_refuses_start_times_otlp_refuses_and_stores_nothing(client, api_key, start_time, message):
    response = _post(client, api_key.plaintext, {"calls": [_call(0), _call(1, start_time=start_time)]})
    assert response.status_code == 400
    assert message in response.json()["calls"]["1"]["start_time"][0]
    assert LLMCall.objects.count() == 0


@pytest.mark.django_db
def test_it_accepts_a_start_time_up_to_a_day_ahead_as_otlp_does(client, api_key):
    soon = (datetime.now(UTC) + timedelta(hours=23)).isoformat()
    assert _post(client, api_key.plaintext, [_call(0, start_time=soon)]).status_code == 202
    assert LLMCall.objects.count() == 1


@pytest.mark.django_db
def test_a_fuzzed_call_is_stored_flagged_implausible_and_billed_nothing(client, api_key, priced):
    fuzzed = _call(0, request_model="o1-pro", response_model="o1-pro", input_tokens=100_000_000, cached_input_tokens=0,
                   output_tokens=0, reasoning_tokens=0)  # $15,000 at o1-pro's $150 per million input tokens
    assert _post(client, api_key.plaintext, [fuzzed, _call(1)]).status_code == 202
    fuzzed_row = LLMCall.objects.get(request_model="o1-pro")
    assert (fuzzed_row.input_tokens, fuzzed_row.cost_status, fuzzed_row.cost_usd) == (100_000_000, "implausible", None)
    assert LLMCall.objects.get(request_model="gpt-4o-mini").cost_usd == Decimal("0.0001542")  # the batch's real call


@pytest.mark.django_db
def test_it_rejects_inconsistent_token_counts(client, api_key):
    response = _post(client, api_key.plaintext, [_call(0, cached_input_tokens=5000)])
    assert response.status_code == 400
    assert "input_tokens includes cached_input_tokens" in str(response.json())


@pytest.mark.django_db
def test_posting_needs_an_api_key(client, team):
    user = get_user_model().objects.create_user("sam", password="pw-123456!")
    client.force_login(user)
    response = client.post("/api/v1/calls", [_call(0)], content_type="application/json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_it_lists_calls_with_decimal_strings_and_filters(client, api_key, priced):
    _post(client, api_key.plaintext, [_call(0), _call(1, status="error", error_type="rate_limit", input_tokens=0,
                                                     cached_input_tokens=0, output_tokens=0, reasoning_tokens=0)])
    response = client.get("/api/v1/calls", HTTP_AUTHORIZATION=f"Bearer {api_key.plaintext}")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["status"] for r in rows] == ["error", "ok"]  # newest first
    ok = rows[1]
    assert ok["cost_usd"] == "0.0001542000"
    assert (ok["input_tokens"], ok["cached_input_tokens"], ok["output_tokens"], ok["reasoning_tokens"]) == (1200, 1024, 85, 64)
    assert ok["team"] == "search" and ok["cost_status"] == "priced"
    errors = client.get("/api/v1/calls?status=error", HTTP_AUTHORIZATION=f"Bearer {api_key.plaintext}").json()["results"]
    assert len(errors) == 1 and errors[0]["error_type"] == "rate_limit"
    later = client.get("/api/v1/calls", {"start": (START + timedelta(seconds=30)).isoformat()},
                       HTTP_AUTHORIZATION=f"Bearer {api_key.plaintext}")
    assert len(later.json()["results"]) == 1


@pytest.mark.django_db
def test_it_pages_with_a_cursor(client, api_key, priced):
    _post(client, api_key.plaintext, [_call(i) for i in range(5)])
    seen, url = [], "/api/v1/calls?page_size=2"
    while url:
        page = client.get(url, HTTP_AUTHORIZATION=f"Bearer {api_key.plaintext}").json()
        seen += [row["span_id"] for row in page["results"]]
        url = page["next"]
    assert len(seen) == 5 and len(set(seen)) == 5


@pytest.mark.django_db
def test_it_rejects_a_bad_filter(client, api_key):
    response = client.get("/api/v1/calls?start=yesterday", HTTP_AUTHORIZATION=f"Bearer {api_key.plaintext}")
    assert response.status_code == 400
    assert "start" in response.json()


@pytest.mark.django_db
def test_a_person_sees_only_their_teams_calls(client, api_key, org, team, other_team, priced):
    ads_key = create_api_key(org, "ads", team=other_team)
    _post(client, api_key.plaintext, [_call(0)])
    _post(client, ads_key.plaintext, [_call(1)])
    viewer = get_user_model().objects.create_user("vera", password="pw-123456!")
    Membership.objects.create(user=viewer, organization=org, team=team, role=Role.VIEWER)
    client.force_login(viewer)
    rows = client.get("/api/v1/calls").json()["results"]
    assert [r["team"] for r in rows] == ["search"]


@pytest.mark.django_db
def test_a_team_key_reads_only_its_team(client, api_key, org, other_team, priced):
    ads_key = create_api_key(org, "ads", team=other_team)
    _post(client, api_key.plaintext, [_call(0)])
    _post(client, ads_key.plaintext, [_call(1)])
    rows = client.get("/api/v1/calls", HTTP_AUTHORIZATION=f"Bearer {ads_key.plaintext}").json()["results"]
    assert [r["team"] for r in rows] == ["ads"]


@pytest.mark.django_db
def test_anonymous_gets_401(client):
    assert client.get("/api/v1/calls").status_code in (401, 403)


@pytest.mark.django_db
def test_the_openapi_schema_describes_the_calls_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/v1/calls" in response.json()["paths"]
