"""`POST /api/v1/feedback`: a score tied to one of the key's calls (by trace/span id or response id) — 201; bad input
400; an unknown call, or another organization's or team's, 404; the comment kept only when content is captured.
And the SDK's `feedback()` posting it."""

from datetime import timedelta
from decimal import Decimal
from http.server import ThreadingHTTPServer

import observatory_sdk
import pytest
from django.utils import timezone

from ingest.feedback import Feedback
from ingest.models import LLMCall
from observatory.models import Organization, Team
from observatory.services import create_api_key

TRACE, SPAN = "a" * 32, "b" * 16


@pytest.fixture
def call(org, team):
    return LLMCall.objects.create(organization=org, team=team, trace_id=TRACE, span_id=SPAN, provider="openai",
                                  request_model="gpt-4o", response_id="chatcmpl-42",
                                  start_time=timezone.now() - timedelta(minutes=5))


@pytest.fixture
def key(org):
    return create_api_key(org, "app").plaintext


def post(client, key, payload):
    return client.post("/api/v1/feedback", payload, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.django_db
def test_it_records_feedback_by_trace_and_span_id(client, key, call):
    response = post(client, key, {"trace_id": TRACE, "span_id": SPAN, "score": 1, "comment": "spot on"})

    assert response.status_code == 201 and response.json()["score"] == "1"
    feedback = Feedback.objects.get()
    assert (feedback.trace_id, feedback.span_id, feedback.score) == (TRACE, SPAN, Decimal(1))
    assert feedback.call_start_time == call.start_time
    assert feedback.comment == ""  # the organization does not capture content


@pytest.mark.django_db
def test_it_finds_the_call_by_the_gateways_response_id_and_keeps_a_comment_when_content_is_captured(client, key, call,
                                                                                                   org):
    org.capture_content = True
    org.save()
    response = post(client, key, {"response_id": "chatcmpl-42", "score": "4.5", "comment": "good"})

    assert response.status_code == 201
    assert Feedback.objects.get().comment == "good" and Feedback.objects.get().score == Decimal("4.5")


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [
    {"score": 1},  # no call named
    {"trace_id": TRACE, "score": "great"},
    {"trace_id": "xyz", "score": 1},
    {"span_id": SPAN, "score": 1},
    {"trace_id": TRACE, "score": "NaN"},
    {"trace_id": TRACE, "score": 1e12},
    {"trace_id": TRACE},
])
def test_bad_input_is_a_400(client, key, call, payload):
    response = post(client, key, payload)
    assert response.status_code == 400
    assert Feedback.objects.count() == 0


@pytest.mark.django_db
def test_an_unknown_call_is_a_404(client, key, call):
    assert post(client, key, {"trace_id": "c" * 32, "score": 1}).status_code == 404
    assert post(client, key, {"response_id": "chatcmpl-nope", "score": 1}).status_code == 404


@pytest.mark.django_db
def test_another_organizations_call_is_a_404(client, call):
    other = Organization.objects.create(name="Globex", slug="globex")
    theirs = create_api_key(other, "theirs").plaintext

    assert post(client, theirs, {"trace_id": TRACE, "span_id": SPAN, "score": 0}).status_code == 404
    assert post(client, theirs, {"response_id": "chatcmpl-42", "score": 0}).status_code == 404
    assert Feedback.objects.count() == 0


@pytest.mark.django_db
def test_another_teams_key_gets_a_404(client, org, call):
    ads = Team.objects.create(organization=org, name="Ads", slug="ads")
    ads_key = create_api_key(org, "ads", team=ads).plaintext

    assert post(client, ads_key, {"trace_id": TRACE, "score": 0}).status_code == 404


@pytest.mark.django_db
def test_it_needs_an_api_key(client, call):
    assert client.post("/api/v1/feedback", {"trace_id": TRACE, "score": 1}, content_type="application/json").status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_the_sdk_sends_feedback(live_server, key, call):
    observatory_sdk.init(endpoint=live_server.url, api_key=key)
    try:
        status = observatory_sdk.feedback(1, response_id="chatcmpl-42", wait=True)
        missing = observatory_sdk.feedback(1, response_id="chatcmpl-unknown", wait=True)
    finally:
        observatory_sdk.shutdown()

    assert (status, missing) == (201, 404)
    assert Feedback.objects.get().trace_id == TRACE


def test_the_sdk_never_raises_when_observatory_is_away():
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    observatory_sdk.init(endpoint=f"http://127.0.0.1:{port}", api_key="obs_x")
    try:
        assert observatory_sdk.feedback(1, trace_id=TRACE, wait=True) is None
        assert observatory_sdk.feedback(1, trace_id=TRACE) is None  # background: returns at once
    finally:
        observatory_sdk.shutdown()
