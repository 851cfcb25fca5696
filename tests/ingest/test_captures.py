"""OTLP captures of the newest instrumentation releases (tests/data/otlp/captures/), posted to /v1/traces
as their exporters sent them, and the stored calls compared with what the fake provider really served.

Each scenario of captures/index.json is checked in six aspects, so every gap shows on its own:

- calls:     as many LLMCall rows as model calls were made (a call reported by two spans counts once);
- model:     provider, request model and response model (the dated snapshot the API answered with);
- tokens:    input (incl. cache reads and writes), cache read, cache write, output (incl. reasoning), reasoning;
- status:    ok / error, error type and HTTP status of the failed calls;
- streaming: the stream flag;
- cost:      priced from the catalog for the canonical model, to the exact figure where the telemetry carries
             every token count; a call whose usage the telemetry does not carry is not shown as a priced $0.

A ground-truth field that the library does not put on its spans at all is listed in the call's
`telemetry_lacks` and not asserted: no mapper can recover it. Everything else is the product's to get right;
where it does not today, the case is a strict xfail whose reason says what is wrong (remove it with the fix).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billing.pricing.at_ingest import catalog_cache, cost_of
from billing.services import load_default_catalog
from ingest.models import LLMCall
from ingest.records import CallFields

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "otlp" / "captures"
INDEX = json.loads((CAPTURES / "index.json").read_text())
ASPECTS = ("calls", "model", "tokens", "status", "streaming", "cost")
TOKENS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
CANONICAL = sorted({call["canonical_model"] for entry in INDEX for call in entry["ground_truth"]["calls"]})

# (library, scenario, aspect) -> what ingest gets wrong today
XFAIL: dict[tuple[str, str, str], str] = {}  # (library, scenario, aspect) → what ingest gets wrong, while it does


def _cases():
    for entry in INDEX:
        for aspect in ASPECTS:
            reason = XFAIL.get((entry["library"], entry["scenario"], aspect))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(entry, aspect, marks=marks, id=f"{entry['library']}-{entry['version']}/{entry['scenario']}/{aspect}")


@pytest.fixture
def prices(db):
    """The bundled catalog, in force on every install after migrate (the captured models among it)."""
    load_default_catalog()
    catalog_cache.refresh(force=True)
    yield
    catalog_cache.refresh(force=True)


def _post(post_otlp, entry) -> None:
    for body in entry["files"]:
        headers = {"HTTP_CONTENT_ENCODING": body["content_encoding"]} if body["content_encoding"] else {}
        response = post_otlp(body=(CAPTURES / body["file"]).read_bytes(), content_type=body["content_type"], **headers)
        assert response.status_code == 200, (body["file"], response.content)
        assert response.content in (b"", b"{}"), response.content  # no partial success: nothing was rejected


def _expected_cost(org_id: int, truth: dict, when: datetime) -> Decimal:
    call = CallFields(trace_id="0" * 32, span_id="0" * 16, parent_span_id=None, start_time=when, duration_ms=1.0,
                      provider=truth["provider"], request_model=truth["canonical_model"],
                      response_model=truth["canonical_model"], **{name: truth[name] for name in TOKENS})
    return cost_of(org_id, call, when).cost_usd


def _check(aspect: str, row: LLMCall, truth: dict, org_id: int) -> None:
    lacks = set(truth["telemetry_lacks"])
    where = f"{truth['status']} call {truth['request_model']}"
    if aspect == "model":
        assert row.provider == truth["provider"], where
        assert row.request_model == truth["request_model"], where
        if "response_model" not in lacks:
            assert row.response_model == (truth["response_model"] or ""), where
    elif aspect == "tokens":
        got = {name: getattr(row, name) for name in TOKENS if name not in lacks}
        assert got == {name: truth[name] for name in TOKENS if name not in lacks}, where
    elif aspect == "status":
        assert row.status == truth["status"], where
        if truth["status"] == "error":
            assert row.error_type == truth["error_type"], where
            if "http_status" not in lacks:
                assert row.http_status == truth["http_status"], where
    elif aspect == "streaming":
        if "streaming" not in lacks:
            assert row.streaming == truth["streaming"], where
    elif aspect == "cost":
        if truth["status"] == "error":
            assert row.cost_usd == 0, where
        elif set(TOKENS) <= lacks:  # the telemetry carries no usage at all (a stream without include_usage)
            assert not row.usage_reported, where
            assert (row.cost_status, row.cost_usd) == ("usage_missing", None), f"{where}: a stream without usage is no $0"
        else:
            assert row.cost_status == "priced", where
            if not lacks & set(TOKENS):
                assert row.cost_usd == _expected_cost(org_id, truth, row.start_time), where


def test_the_index_describes_every_capture():
    assert INDEX, "no captures"
    for entry in INDEX:
        truth = entry["ground_truth"]
        assert truth["model_calls"] == len(truth["calls"]) > 0
        for body in entry["files"]:
            assert (CAPTURES / body["file"]).is_file(), body["file"]
        for call in truth["calls"]:
            assert call["input_tokens"] >= call["cached_input_tokens"] + call["cache_write_tokens"]
            assert call["output_tokens"] >= call["reasoning_tokens"]
            assert set(call["telemetry_lacks"]) <= set(TOKENS) | {"response_model", "http_status", "streaming"}


@pytest.mark.django_db
@pytest.mark.parametrize(("entry", "aspect"), list(_cases()))
def test_the_stored_calls_match_what_the_provider_served(post_otlp, org, prices, entry, aspect):
    _post(post_otlp, entry)
    rows = list(LLMCall.objects.order_by("start_time", "span_id"))
    calls = entry["ground_truth"]["calls"]
    if aspect == "calls":
        assert len(rows) == len(calls), [(r.source, r.request_model, r.input_tokens, r.output_tokens) for r in rows]
        return
    if len(rows) == len(calls):
        pairs = list(zip(rows, calls))
    else:  # a call stored twice: tokens and cost are wrong by construction, the rest is checked row by row
        assert aspect not in ("tokens", "cost"), f"{len(rows)} calls stored for {len(calls)} made"
        pairs = [(row, next((c for c in calls if c["status"] == row.status), calls[0])) for row in rows]
    for row, truth in pairs:
        _check(aspect, row, truth, org.pk)
