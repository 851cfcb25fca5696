"""A call reported twice in different exports counts once: the late duplicate corrects the stored call and the
rollups instead of adding to them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.queries import calls_naming_callers, top_callers, total
from billing.rollups import rollup_pending
from billing.services import load_default_catalog
from ingest.models import LLMCall
from observatory.access import Scope
from observatory.services import create_api_key

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def post(client, org, team):
    load_default_catalog()
    key = create_api_key(org, "ingest", team=team).plaintext

    def post(*calls: dict) -> None:
        response = client.post("/api/v1/calls", {"calls": list(calls)}, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 202, response.content

    return post


def _call(span_id: str, offset_ms: int = 0, **fields) -> dict:
    start = timezone.now().replace(minute=10) - timedelta(hours=1) + timedelta(milliseconds=offset_ms)
    return {"trace_id": TRACE, "span_id": span_id, "start_time": start.isoformat(), "duration_ms": 900,
            "provider": "anthropic", "request_model": "claude-sonnet-4-5", "input_tokens": 1842,
            "cached_input_tokens": 1500, "cache_write_tokens": 300, "output_tokens": 77, **fields}


def _month(org) -> dict:
    now = timezone.now()
    return total(Scope(organization_id=org.id), now - timedelta(days=2), now + timedelta(hours=1))


@pytest.mark.django_db
def test_the_same_response_id_in_a_later_export_counts_once(post, org):
    post(_call("00f067aa0ba902b7", response_id="msg_01abc"))
    rollup_pending()
    one_call = _month(org)
    assert one_call["calls"] == 1 and one_call["cost_usd"] > 0
    post(_call("00f067aa0ba902b8", offset_ms=3, response_id="msg_01abc", streaming=True, ttft_ms=412.0,
               response_model="claude-sonnet-4-5-20250929", trace_id="5bf92f3577b34da6a3ce929d0e0e4736"))
    rollup_pending()
    after = _month(org)
    assert after["calls"] == 1
    assert after["cost_usd"] == one_call["cost_usd"]
    [call] = LLMCall.objects.all()
    assert (call.streaming, call.ttft_ms, call.response_model) == (True, 412.0, "claude-sonnet-4-5-20250929")
    assert call.attributes["observatory.duplicate_span_ids"] == ["00f067aa0ba902b8"]


@pytest.mark.django_db
def test_a_framework_span_and_the_client_span_under_it_in_two_exports_count_once(post, org):
    post(_call("a00000000000000a", output_tokens=77))
    rollup_pending()
    post(_call("b00000000000000b", offset_ms=5, parent_span_id="a00000000000000a", output_tokens=77,
               response_model="claude-sonnet-4-5-20250929"))
    rollup_pending()
    assert _month(org)["calls"] == 1
    assert LLMCall.objects.get().response_model == "claude-sonnet-4-5-20250929"


@pytest.mark.django_db
def test_distinct_calls_with_the_same_usage_stay_distinct(post, org):
    post(_call("c00000000000000c", response_id="msg_1"), _call("d00000000000000d", offset_ms=4, response_id="msg_2"))
    post(_call("e00000000000000e", offset_ms=9))
    rollup_pending()
    summary = _month(org)
    assert summary["calls"] == 3
    assert LLMCall.objects.count() == 3
    single = summary["cost_usd"] / 3
    assert single == pytest.approx(Decimal("0.002856"), abs=Decimal("0.000001"))


@pytest.mark.django_db
def test_a_wrapper_with_two_calls_under_it_is_not_merged(post, org):
    post(_call("f00000000000000f"))
    post(_call("100000000000000a", offset_ms=2, parent_span_id="f00000000000000f"),
         _call("100000000000000b", offset_ms=400, parent_span_id="f00000000000000f"))
    rollup_pending()
    assert LLMCall.objects.count() == 3


@pytest.mark.django_db
def test_a_late_duplicate_counts_once_for_its_end_user_and_session(post, org):
    post(_call("f10000000000000f", response_id="msg_user", end_user="u-7", session="s-1"))
    rollup_pending()
    post(_call("f20000000000000f", offset_ms=3, response_id="msg_user", end_user="u-7", session="s-1",
               trace_id="6bf92f3577b34da6a3ce929d0e0e4736"))
    rollup_pending()
    now = timezone.now()
    start, end = now - timedelta(days=2), now + timedelta(hours=1)
    [user] = top_callers(Scope(org.id), start, end, "end_user")
    [session] = top_callers(Scope(org.id), start, end, "session")
    assert (user["end_user"], user["calls"], session["calls"]) == ("u-7", 1, 1)
    assert user["cost_usd"] == LLMCall.objects.get().cost_usd
    assert calls_naming_callers(Scope(org.id), start, end) == {"calls": 1, "with_user": 1, "with_session": 1}
