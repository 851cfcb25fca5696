"""The WSGI entry point gunicorn serves: OTLP exports take the short path, with the same answers and guards."""

import io

import pytest
from django.contrib.auth.models import User

from ingest.models import LLMCall
from observatory.services import create_api_key
from observatory.wsgi import application
from tests.ingest.test_otlp_http import CHAT, make_request


def _request(path, method="POST", body=b"", host="localhost", **headers):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": host, "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-protobuf", **headers,
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = response_headers

    chunks = application(environ, start_response)
    try:
        answer["body"] = b"".join(chunks)
    finally:
        chunks.close()
    return answer


@pytest.fixture
def key(org, team):
    return create_api_key(org, "test", team=team).plaintext


@pytest.mark.django_db(transaction=True)
def test_it_stores_an_export(key):
    answer = _request("/v1/traces", body=make_request([CHAT, CHAT]).SerializeToString(), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert answer["status"] == 200
    assert LLMCall.objects.count() == 2
    headers = dict(answer["headers"])
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Set-Cookie" not in headers


@pytest.mark.django_db(transaction=True)
def test_it_stores_a_replayed_export_once(key):
    body = make_request([CHAT, CHAT]).SerializeToString()
    assert _request("/v1/traces", body=body, HTTP_AUTHORIZATION=f"Bearer {key}")["status"] == 200
    assert _request("/api/public/otel/v1/traces", body=body, HTTP_X_API_KEY=key)["status"] == 200
    assert LLMCall.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_it_requires_a_key(key):
    answer = _request("/v1/traces", body=make_request([CHAT]).SerializeToString())
    assert answer["status"] == 401
    assert _request("/v1/traces", body=b"x", HTTP_AUTHORIZATION="Bearer obs_0123456789ab_wrong")["status"] == 401
    assert LLMCall.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_rejects_get(key):
    answer = _request("/v1/metrics", method="GET", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert answer["status"] == 405
    assert dict(answer["headers"])["Allow"] == "POST"


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_host_not_allowed(key):
    answer = _request("/v1/traces", body=make_request([CHAT]).SerializeToString(), host="evil.example",
                      HTTP_AUTHORIZATION=f"Bearer {key}")
    assert answer["status"] == 400
    assert LLMCall.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_pages_keep_the_whole_middleware_stack():
    User.objects.create_user("ada", password="x" * 12)
    answer = _request("/login/", method="GET")
    assert answer["status"] == 200
    assert any(name == "Set-Cookie" and value.lstrip().startswith("csrftoken=") for name, value in answer["headers"])
    assert _request("/", method="GET")["status"] == 302  # sessions and login: to the login page
