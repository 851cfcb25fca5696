"""One model call reported by several spans is counted once, and distinct calls that merely look alike are not
merged."""

from __future__ import annotations

from ingest.mappers import select_calls
from tests.ingest.test_mappers import LOGFIRE_STREAM, logfire_span


def test_a_logfire_stream_is_joined_without_a_stream_flag_on_the_request_span():
    # logfire 5.4: request_data holds only the model; the log-span marks the stream and carries usage and id.
    no_usage = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.raw", "gen_ai.response.finish_reasons")
    request = logfire_span(
        drop=no_usage,
        attributes={"request_data": '{"model":"gpt-4o-mini"}', "gen_ai.response.model": "gpt-4o-mini"},
        start_ms=0,
        end_ms=60,
    )
    response = logfire_span(
        LOGFIRE_STREAM,
        drop=("gen_ai.usage.raw",),
        attributes={"logfire.span_type": "log", "duration": 0.07, "gen_ai.response.id": "chatcmpl-9740"},
        start_ms=130,
        end_ms=130,
    )

    (call,), rest = select_calls([request, response])

    assert call.span_id == request.span_id
    assert (call.streaming, call.response_model, call.response_id) == (True, "gpt-4o-mini-2024-07-18", "chatcmpl-9740")
    assert (call.input_tokens, call.output_tokens, call.usage_reported) == (1200, 85, True)
    assert rest == [response]


def test_a_failed_logfire_request_is_not_joined_to_a_later_stream():
    no_usage = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.raw", "gen_ai.response.model")
    failed = logfire_span(drop=no_usage, status=2, message="Error code: 429", start_ms=0, end_ms=20)
    response = logfire_span(LOGFIRE_STREAM, attributes={"logfire.span_type": "log", "duration": 0.05}, start_ms=200,
                            end_ms=200)

    calls, _ = select_calls([failed, response])

    assert sorted(call.status for call in calls) == ["error", "ok"]
