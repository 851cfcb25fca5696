"""One model call reported by several spans is counted once, and distinct calls that merely look alike are not
merged: the provider's response id is the strongest evidence, one tracer never reports one call twice side by
side, and two layers of one library nest in time."""

from __future__ import annotations

import json

from ingest.mappers import DUPLICATES_KEY, select_calls
from ingest.records import EventView, SpanView
from tests.ingest.test_mappers import (
    LOGFIRE_STREAM,
    MS,
    START,
    anthropic_native,
    logfire_span,
    make_span,
    tokens,
)

TRACE_A = "bd541ff9a4be07f7645d112e78a2f385"
TRACE_B = "c81ee3f9b8abba6f9306c60cf67c0b0e"


def openllmetry_anthropic(**extra: object) -> dict:
    attributes = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.response.id": "msg_4b96",
        "gen_ai.usage.input_tokens": 1842,
        "gen_ai.usage.output_tokens": 78,  # message_start's output token added to the final count
        "gen_ai.usage.total_tokens": 1920,
        "gen_ai.usage.cache_read.input_tokens": 1500,
        "gen_ai.usage.cache_creation.input_tokens": 300,
    }
    attributes.update(extra)
    return attributes


def openllmetry_span(attributes: dict, **fields: object) -> SpanView:
    return make_span(attributes, scope="opentelemetry.instrumentation.anthropic", version="0.62.4", name="anthropic.chat",
                     **fields)


def native_stream(response_id: str = "msg_4b96", **fields: object) -> SpanView:
    native = anthropic_native(
        **{"gen_ai.response.id": response_id, "gen_ai.request.stream": True, "gen_ai.response.time_to_first_chunk": 0.165}
    )
    native.trace_id = fields.get("trace_id", TRACE_B)
    native.start_ns = START + fields.get("start_ms", 2) * MS
    native.end_ns = START + fields.get("end_ms", 480) * MS
    return native


def test_one_response_id_from_two_instrumentations_is_one_call_even_when_their_usage_differs():
    ours = openllmetry_span(openllmetry_anthropic(), trace_id=TRACE_A, start_ms=0, end_ms=500)
    native = native_stream()

    (call,), rest = select_calls([ours, native])

    assert call.span_id == ours.span_id
    assert call.response_id == "msg_4b96"
    assert tokens(call) == (1842, 1500, 300, 77, 0)  # the provider's own SDK reads the API's usage as sent
    assert (call.streaming, call.ttft_ms, call.http_status) == (True, 165.0, 200)
    assert call.attributes[DUPLICATES_KEY] == [native.span_id]
    assert rest == [native]


def test_one_response_id_needs_one_provider_and_overlapping_windows():
    other_provider = openllmetry_span(
        openllmetry_anthropic(**{"gen_ai.provider.name": "aws.bedrock"}), trace_id=TRACE_A, start_ms=0, end_ms=500
    )
    later = openllmetry_span(openllmetry_anthropic(), trace_id=TRACE_A, start_ms=600, end_ms=900)

    assert len(select_calls([other_provider, native_stream()])[0]) == 2
    assert len(select_calls([later, native_stream()])[0]) == 2


def test_two_calls_with_identical_usage_and_different_response_ids_stay_two():
    ours = openllmetry_span(
        openllmetry_anthropic(**{"gen_ai.usage.output_tokens": 77, "gen_ai.usage.total_tokens": 1919}),
        trace_id=TRACE_A,
        start_ms=0,
        end_ms=500,
    )
    native = native_stream("msg_other", start_ms=3)

    calls, rest = select_calls([ours, native])

    assert sorted(call.response_id for call in calls) == ["msg_4b96", "msg_other"]
    assert rest == []


def test_one_tracer_never_reports_one_call_twice_side_by_side():
    attributes = openllmetry_anthropic(**{"gen_ai.usage.output_tokens": 77, "gen_ai.usage.total_tokens": 1919})
    del attributes["gen_ai.response.id"]
    first = openllmetry_span(dict(attributes), trace_id=TRACE_A, start_ms=0, end_ms=500)
    second = openllmetry_span(dict(attributes), trace_id=TRACE_B, start_ms=3, end_ms=498)

    calls, _ = select_calls([first, second])

    assert [call.span_id for call in calls] == [first.span_id, second.span_id]


def openinference_openai(scope: str, name: str, model: str, params: dict, **fields: object) -> SpanView:
    return make_span(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.model_name": model,
            "llm.invocation_parameters": json.dumps(params),
            "llm.token_count.prompt": 2006,
            "llm.token_count.completion": 93,
            "llm.token_count.total": 2099,
            "llm.token_count.prompt_details.cache_read": 1792,
        },
        scope=scope,
        version="0.1.80",
        name=name,
        **fields,
    )


def test_a_framework_layer_over_a_client_layer_of_one_library_is_one_call_with_the_clients_details():
    outer = openinference_openai(
        "openinference.instrumentation.langchain", "ChatOpenAI", "gpt-4o-mini", {"model": "gpt-4o-mini", "stream": False},
        trace_id=TRACE_A, start_ms=0, end_ms=180,
    )
    inner = openinference_openai(
        "openinference.instrumentation.openai", "ChatCompletion", "gpt-4o-mini-2024-07-18",
        {"model": "gpt-4o-mini", "stream": True}, trace_id=TRACE_B, start_ms=9, end_ms=176,
        events=[EventView("First Token Stream Event", START + 93 * MS, {})],
    )

    (call,), rest = select_calls([outer, inner])

    assert (call.request_model, call.response_model) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (call.streaming, call.ttft_ms) == (True, 84.0)
    assert tokens(call) == (2006, 1792, 0, 93, 0)
    assert rest == [inner]


def test_two_layers_of_one_library_whose_windows_do_not_nest_are_two_calls():
    first = openinference_openai(
        "openinference.instrumentation.langchain", "ChatOpenAI", "gpt-4o-mini", {}, trace_id=TRACE_A, start_ms=0, end_ms=180
    )
    second = openinference_openai(
        "openinference.instrumentation.openai", "ChatCompletion", "gpt-4o-mini", {}, trace_id=TRACE_B, start_ms=5, end_ms=190
    )

    assert len(select_calls([first, second])[0]) == 2


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


def test_a_response_id_the_server_reuses_is_no_evidence():
    # A server answering every call with the same id; two concurrent calls, each seen by two instrumentations.
    spans = []
    for output, trace in ((10, "0af7651916cd43dd8448eb211c80319c"), (20, "4bf92f3577b34da6a3ce929d0e0e4736")):
        ours = openllmetry_span(
            openllmetry_anthropic(**{"gen_ai.response.id": "msg_1", "gen_ai.usage.output_tokens": output,
                                     "gen_ai.usage.total_tokens": 1842 + output}),
            trace_id=trace, start_ms=0, end_ms=500,
        )
        native = anthropic_native(**{"gen_ai.response.id": "msg_1", "gen_ai.usage.output_tokens": output})
        native.trace_id = trace[::-1]
        spans += [ours, native]

    calls, _ = select_calls(spans)

    assert sorted(call.output_tokens for call in calls) == [10, 20]
