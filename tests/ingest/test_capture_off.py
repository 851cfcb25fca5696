"""Content capture off means no content: with the organization's capture_content off, the prompt, completion,
tool-call arguments and tool definitions of every convention (span attributes, span events, log bodies, model
calls and the trace spans around them) land nowhere in the database; with it on, the content is in CallContent.

Every content value below holds "Paris, France" and a marker naming where it came from; the database is then
searched as text, row by row, table by table.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest
from django.db import connection

from billing.models import AttributionRule
from ingest.attribution import rule_cache
from ingest.models import CallContent, LLMCall, TraceSpan

START_NS = time.time_ns() - 3_600 * 10**9
MS = 1_000_000
CITY = "Paris, France"
MARKER = "S3CR3T"
_ids = itertools.count(1)


def secret(where: str) -> str:
    """A content value: a tool argument as the libraries record it, naming where it was put."""
    return json.dumps({"location": CITY, "note": f"{MARKER}-{where}"})


def any_value(value: object) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    return {"stringValue": value}


def key_values(attrs: dict) -> list[dict]:
    return [{"key": key, "value": any_value(value)} for key, value in attrs.items()]


def span(name: str, attrs: dict, *, span_id: str = "", parent: str = "", status: int = 0, message: str = "",
         events: tuple[tuple[str, dict], ...] = ()) -> dict:
    out = {  # the trace id is set by `scope`: one trace per convention
        "spanId": span_id or f"{next(_ids):016x}", "name": name, "kind": 3,
        "startTimeUnixNano": str(START_NS), "endTimeUnixNano": str(START_NS + 900 * MS), "attributes": key_values(attrs),
        "events": [{"name": event, "timeUnixNano": str(START_NS + 100 * MS), "attributes": key_values(values)}
                   for event, values in events],
    }
    if parent:
        out["parentSpanId"] = parent
    if status:
        out["status"] = {"code": status, "message": message}
    return out


def scope(name: str, spans: list[dict], version: str = "", trace_id: str = "") -> dict:
    trace_id = trace_id or f"{next(_ids):032x}"
    for item in spans:
        item["traceId"] = trace_id
    return {"scope": {"name": name, "version": version}, "spans": spans}


def chat(input_tokens: int) -> dict:
    """A model call's gen_ai.* metadata; each convention reports its own usage, so no two calls look like one."""
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": 85}


LOGGED_TRACE, LOGGED_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00000000000000aa"  # the call the log records join
TOOLS = json.dumps([{"name": "get_weather", "description": f"Weather in {CITY} {MARKER}-definition",
                     "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}])


def conventions() -> list[dict]:
    """One model call (and a tool or agent span) per convention, each carrying its content and tool keys."""
    return [
        scope("openlit.instrumentation.openai", [
            span("chat gpt-4o-mini", {
                **chat(1100), "gen_ai.provider.name": "openai", "gen_ai.input.messages": secret("openlit-input"),
                "gen_ai.output.messages": secret("openlit-output"), "gen_ai.system_instructions": secret("openlit-system"),
                "gen_ai.tool.args": secret("openlit-tool-args"), "gen_ai.tool.call.arguments": secret("openlit-call-args"),
                "gen_ai.tool.definitions": TOOLS, "gen_ai.request.stop_sequences": [f"{CITY} {MARKER}-stop"],
                "gen_ai.tool.name": "get_weather", "gen_ai.request.temperature": 0.2, "server.address": "api.openai.com",
                "app.note": f"{CITY} {MARKER}-unknown-string", "app.retries": 2,
                "http.url": f"https://api.openai.com/v1/chat/completions?q={CITY}{MARKER}-query",
            }),
            span("execute_tool get_weather", {
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.arguments": secret("openlit-tool-span"), "gen_ai.tool.call.result": secret("openlit-result"),
            }),
        ]),
        scope("opentelemetry.instrumentation.openai.v1", [
            span("openai.chat", {
                **chat(1200), "llm.request.type": "chat", "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": secret("ollm-prompt"),
                "gen_ai.completion.0.content": secret("ollm-completion"), "llm.request.functions.0.name": "get_weather",
                "llm.request.functions.0.description": secret("ollm-function-description"),
                "llm.request.functions.0.parameters": secret("ollm-function-parameters"),
                "gen_ai.completion.0.tool_calls.0.arguments": secret("ollm-tool-call"),
            }),
            span("weather.workflow", {
                "traceloop.span.kind": "workflow", "traceloop.workflow.name": "weather",
                "traceloop.entity.input": secret("ollm-entity-input"), "traceloop.entity.output": secret("ollm-entity-output"),
            }),
        ], version="0.62.4"),
        scope("openinference.instrumentation.openai", [
            span("ChatCompletion", {
                "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini-2024-07-18", "llm.token_count.prompt": 1010,
                "llm.token_count.completion": 85, "llm.input_messages.0.message.content": secret("oi-input-message"),
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": secret("oi-tool-call"),
                "llm.tools.0.tool.json_schema": secret("oi-tool-schema"), "input.value": secret("oi-input-value"),
                "output.value": secret("oi-output-value"),
                "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini", "temperature": 0.2,
                                                         "tools": json.loads(TOOLS), "stop": [f"{CITY} {MARKER}-param-stop"]}),
            }),
            span("get_weather", {
                "openinference.span.kind": "TOOL", "tool.name": "get_weather", "tool.description": secret("oi-tool-description"),
                "tool.parameters": secret("oi-tool-parameters"), "tool_call.function.arguments": secret("oi-tool-span"),
                "input.value": secret("oi-tool-input"), "output.value": secret("oi-tool-output"),
            }),
            span("RunnableSequence", {"openinference.span.kind": "CHAIN", "input.value": secret("oi-chain-input"),
                                      "metadata": json.dumps({"team": "search"})}),
        ]),
        scope("ai", [
            span("ai.generateText.doGenerate", {
                "ai.operationId": "ai.generateText.doGenerate", "ai.model.provider": "openai.chat", "ai.model.id": "gpt-4o-mini",
                "ai.usage.promptTokens": 1020, "ai.usage.completionTokens": 85, "ai.prompt.messages": secret("vercel-messages"),
                "ai.prompt.tools": [secret("vercel-tool-definition")], "ai.prompt.toolChoice": secret("vercel-tool-choice"),
                "ai.response.text": secret("vercel-text"), "ai.response.toolCalls": secret("vercel-tool-calls"),
                "ai.telemetry.metadata.feature": "forecast",
            }),
            span("ai.toolCall", {
                "ai.operationId": "ai.toolCall", "ai.toolCall.name": "get_weather", "ai.toolCall.id": "call_1",
                "ai.toolCall.args": secret("vercel-tool-args"), "ai.toolCall.result": secret("vercel-tool-result"),
            }),
        ]),
        scope("pydantic-ai", [
            span("chat gpt-4o-mini", {
                **chat(1300), "gen_ai.system": "openai", "events": json.dumps([{"content": secret("pai-events")}]),
                "model_request_parameters": json.dumps({"function_tools": json.loads(TOOLS)}),
                "logfire.msg": f"chat {CITY} {MARKER}-logfire-msg",
            }),
            span("running tool", {
                "gen_ai.tool.name": "get_weather", "tool_arguments": secret("pai-tool-args"),
                "tool_response": secret("pai-tool-response"), "logfire.msg": f"running tool {CITY} {MARKER}-msg",
                "logfire.msg_template": "running tool: {gen_ai.tool.name}",
            }),
            span("agent run", {
                "agent_name": "forecaster", "final_result": secret("pai-final-result"),
                "pydantic_ai.all_messages": secret("pai-all-messages"),
            }),
        ]),
        scope("langfuse-sdk", [
            span("OpenAI-generation", {
                "langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o-mini-2024-07-18",
                "langfuse.observation.usage_details": json.dumps({"prompt_tokens": 1030, "completion_tokens": 85}),
                "langfuse.observation.input": secret("langfuse-input"), "langfuse.observation.output": secret("langfuse-output"),
                "langfuse.observation.model.parameters": json.dumps({"temperature": 0.2, "tools": json.loads(TOOLS)}),
                "langfuse.trace.input": secret("langfuse-trace-input"),
            }),
        ]),
        scope("mlflow.openai", [
            span("Completions", {
                "mlflow.spanType": '"CHAT_MODEL"', "mlflow.llm.provider": '"openai"', "model": '"gpt-4o-mini"',
                "mlflow.chat.tokenUsage": json.dumps({"input_tokens": 1040, "output_tokens": 85, "total_tokens": 1125}),
                "mlflow.spanInputs": secret("mlflow-inputs"), "mlflow.spanOutputs": secret("mlflow-outputs"),
                "mlflow.chat.tools": TOOLS, "tools": TOOLS,
            }),
            span("get_weather", {"mlflow.spanType": '"TOOL"', "mlflow.spanInputs": secret("mlflow-tool-inputs")}),
        ]),
        scope("litellm", [
            span("litellm_request", {**chat(1400), "gen_ai.system": "openai", "llm.request.type": "acompletion"}, span_id=LOGGED_SPAN),
            span("raw_gen_ai_request", {
                "llm.openai.messages": secret("litellm-messages"), "llm.openai.choices": secret("litellm-choices"),
                "llm.openai.tools": TOOLS, "llm.openai.id": "chatcmpl-raw", "error.message": f"{CITY} {MARKER}-error",
            }, parent=LOGGED_SPAN),
        ], trace_id=LOGGED_TRACE),
        scope("opentelemetry.instrumentation.openai_v2", [
            span("chat gpt-4o-mini", {**chat(1500), "gen_ai.provider.name": "openai", "gen_ai.tool.definitions": TOOLS},
                 status=2, message=f"Error code: 400 - {CITY} {MARKER}-status",
                 events=(("gen_ai.content.prompt", {"gen_ai.prompt": secret("event-prompt")}),
                         ("gen_ai.content.completion", {"gen_ai.completion": secret("event-completion")}),
                         ("exception", {"exception.type": "BadRequestError",
                                        "exception.message": f"{CITY} {MARKER}-exception"}))),
        ]),
    ]


def traces_body() -> bytes:
    resource = {"attributes": key_values({"service.name": "weather-bot"})}
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": conventions()}]}).encode()


def logs_body() -> bytes:
    def record(event: str, body: dict | None, attrs: dict) -> dict:
        out = {"timeUnixNano": str(START_NS), "traceId": LOGGED_TRACE, "spanId": LOGGED_SPAN, "eventName": event,
               "attributes": key_values(attrs)}
        if body is not None:
            out["body"] = body
        return out

    records = [
        record("gen_ai.user.message", {"stringValue": secret("log-user-message")}, {"gen_ai.system": "openai"}),
        record("gen_ai.choice", {"kvlistValue": {"values": key_values({"message": secret("log-choice")})}}, {}),
        record("gen_ai.client.inference.operation.details", None, {
            "gen_ai.input.messages": secret("log-input"), "gen_ai.output.messages": secret("log-output"),
            "gen_ai.tool.definitions": TOOLS,
        }),
    ]
    return json.dumps({"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "openai"}, "logRecords": records}]}]}).encode()


def rows_mentioning(text: str) -> dict[str, int]:
    """Every table's rows whose text holds `text`: {table: rows}, the tables with none left out."""
    found = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT count(*) FROM "{table}" AS row WHERE row::text LIKE %s', [f"%{text}%"])
            count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found


def post_everything(post_otlp) -> None:
    assert post_otlp(body=traces_body(), content_type="application/json").json() == {}
    assert post_otlp("/v1/logs", body=logs_body(), content_type="application/json").status_code == 200


@pytest.mark.django_db
def test_it_stores_no_content_anywhere_with_capture_off(post_otlp, org):
    post_everything(post_otlp)

    assert LLMCall.objects.count() == 9 and TraceSpan.objects.count() == 9  # every span arrived
    assert rows_mentioning(CITY) == {}
    assert rows_mentioning(MARKER) == {}


@pytest.mark.django_db
def test_it_keeps_metadata_numbers_and_a_count_of_what_it_withheld(post_otlp, org):
    post_everything(post_otlp)

    call = LLMCall.objects.get(source="openlit")
    assert call.attributes == {
        "gen_ai.tool.name": "get_weather", "server.address": "api.openai.com", "gen_ai.request.temperature": 0.2,
        "app.retries": 2, "http.url": "https://api.openai.com/v1/chat/completions", "observatory.dropped_attributes": 5,
    }
    tool = TraceSpan.objects.get(name="execute_tool get_weather")
    assert tool.attributes == {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                               "observatory.dropped_attributes": 2}
    openinference = LLMCall.objects.get(source="openinference")
    assert openinference.attributes["llm.invocation_parameters"] == '{"model": "gpt-4o-mini", "temperature": 0.2}'
    assert LLMCall.objects.get(source="vercel-ai").feature == "forecast"


@pytest.mark.django_db
def test_it_keeps_the_attribute_an_attribution_rule_looks_at(post_otlp, org, team):
    AttributionRule.objects.create(organization=org, field=AttributionRule.Field.ATTRIBUTE, attribute_key="app.note",
                                   pattern="Paris*", team=team)
    rule_cache.clear()
    post_everything(post_otlp)

    call = LLMCall.objects.get(source="openlit")
    assert (call.team_id, call.attribution) == (team.pk, "rule")
    assert call.attributes["app.note"] == f"{CITY} {MARKER}-unknown-string"
    assert "gen_ai.tool.args" not in call.attributes


@pytest.mark.django_db
def test_it_stores_the_content_in_call_content_with_capture_on(post_otlp, org):
    org.capture_content = True
    org.save()
    post_everything(post_otlp)

    contents = {row.span_id: row for row in CallContent.objects.all()}
    calls = {call.source: call for call in LLMCall.objects.all()}
    for source in ("openlit", "openllmetry", "openinference", "vercel-ai", "pydantic-ai", "langfuse", "mlflow", "otel-genai"):
        content = contents[calls[source].span_id]
        assert CITY in content.input_content + content.output_content, source
    assert f"{MARKER}-log-user-message" in contents[LOGGED_SPAN].input_content
    assert "gen_ai.tool.args" in calls["openlit"].attributes  # with capture on, attributes are kept as sent
