#!/usr/bin/env python3
"""One capture: one instrumentation library x one scenario, run in that library's own virtualenv.

usage: capture.py LIB SCENARIO

Expects tools/fake_provider.py on 127.0.0.1:18090 and an OTLP/HTTP receiver on 127.0.0.1:14319 that
files bodies by the path prefix /cap/<lib>/<scenario>/ (the shared tools/capture/otlp_receiver.py does).
Prints one line `RESULT {json}` with what was called, so the collector can write the ground truth.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

LIB, SCENARIO = sys.argv[1], sys.argv[2]
FAKE = "http://127.0.0.1:18090/s"
RECEIVER = f"http://127.0.0.1:14319/cap/{LIB}/{SCENARIO}"
SERVICE = f"captures-{LIB}"

os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = RECEIVER
os.environ["OTEL_SERVICE_NAME"] = SERVICE
os.environ["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment.name=captures"
os.environ.setdefault("OPENAI_API_KEY", "sk-fake-captures")
os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-fake-captures")

MESSAGES = [
    {"role": "system", "content": "You are a concise geography assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
LONG_SYSTEM = "You are a concise geography assistant. " + "(long cached system prompt) " * 20


# ------------------------------------------------------------------ OTel plumbing
def otel_pipeline():
    """The plain OTel SDK pipeline the instrumentations' docs tell users to set up (OTLP/HTTP protobuf)."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def flush_global():
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    for name in ("force_flush", "shutdown"):
        try:
            getattr(provider, name)()
        except Exception:
            traceback.print_exc()


# ------------------------------------------------------------------ per-library setup
def setup(lib: str):
    """Instrument; return the function that flushes everything at the end."""
    if lib == "otel-openai-v2":
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        provider = otel_pipeline()
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return flush_global
    if lib == "openllmetry":
        provider = otel_pipeline()
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        AnthropicInstrumentor().instrument(tracer_provider=provider)
        return flush_global
    if lib == "openinference-langchain":
        provider = otel_pipeline()
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from openinference.instrumentation.openai import OpenAIInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return flush_global
    if lib == "litellm":
        import litellm

        os.environ["OTEL_EXPORTER"] = "otlp_http"
        os.environ["OTEL_ENDPOINT"] = RECEIVER + "/v1/traces"
        os.environ["OTEL_ENVIRONMENT_NAME"] = "captures"
        litellm.callbacks = ["otel"]

        def flush():
            time.sleep(1.0)  # LiteLLM logs success in a background thread
            for callback in litellm.callbacks + litellm._async_success_callback + litellm.success_callback:
                for attr in ("tracer_provider", "_tracer_provider"):
                    tp = getattr(callback, attr, None)
                    if tp is not None and hasattr(tp, "force_flush"):
                        tp.force_flush()
            flush_global()
        return flush
    if lib.startswith("mlflow"):
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = RECEIVER + "/v1/traces"
        os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"  # MLflow's default is grpc (traces and metrics)
        if lib == "mlflow-semconv":
            os.environ["MLFLOW_ENABLE_OTEL_GENAI_SEMCONV"] = "true"
        import mlflow

        mlflow.openai.autolog()
        mlflow.anthropic.autolog()

        def flush():
            from mlflow.tracing.provider import get_bridged_tracer_provider

            get_bridged_tracer_provider().force_flush()
            get_bridged_tracer_provider().shutdown()
        return flush
    if lib == "logfire":
        import logfire

        logfire.configure(send_to_logfire=False, service_name=SERVICE, environment="captures", console=False)
        logfire.instrument_openai()

        def flush():
            logfire.force_flush()
            logfire.shutdown()
        return flush
    if lib == "openlit":
        import openlit

        openlit.init(otlp_endpoint=RECEIVER, application_name=SERVICE, environment="captures")
        return flush_global
    raise SystemExit(f"unknown lib {lib}")


# ------------------------------------------------------------------ clients
def openai_client(profile: str):
    import openai

    return openai.OpenAI(base_url=f"{FAKE}/{profile}/v1", api_key="sk-fake-captures", max_retries=0)


def anthropic_client(profile: str):
    import anthropic

    return anthropic.Anthropic(base_url=f"{FAKE}/{profile}", api_key="sk-ant-fake-captures", max_retries=0)


def drain(stream) -> str:
    text = ""
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return text


def expect_error(fn) -> str:
    try:
        fn()
    except Exception as exc:  # the expected provider error
        return f"expected {type(exc).__name__}"
    raise RuntimeError("the provider error did not surface")


# ------------------------------------------------------------------ scenarios (direct SDK calls)
def openai_chat():
    return openai_client("p").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=200).choices[0].message.content


def openai_chat_cached():
    return openai_client("c").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content


def openai_chat_reasoning():
    return openai_client("r").chat.completions.create(model="o4-mini", messages=MESSAGES).choices[0].message.content


def openai_stream_no_usage():
    return drain(openai_client("p").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))


def openai_stream_usage():
    return drain(openai_client("c").chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))


def openai_error_then_ok():
    first = expect_error(lambda: openai_client("e429").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))
    second = openai_client("p").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content
    return [first, second]


def openai_error_500():
    return expect_error(lambda: openai_client("e500").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))


def anthropic_messages():
    r = anthropic_client("p").messages.create(
        model="claude-sonnet-4-5", max_tokens=256,
        system=[{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    return r.content[0].text


def anthropic_stream():
    text = ""
    with anthropic_client("p").messages.stream(
            model="claude-sonnet-4-5", max_tokens=256,
            system=[{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": "What is the capital of France?"}]) as stream:
        for piece in stream.text_stream:
            text += piece
    return text


def anthropic_stream_raw():
    text = ""
    for event in anthropic_client("p").messages.create(
            model="claude-sonnet-4-5", max_tokens=256, stream=True,
            system=[{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": "What is the capital of France?"}]):
        if event.type == "content_block_delta":
            text += event.delta.text
    return text


# ------------------------------------------------------------------ LangChain
def langchain_chat():
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-4o-mini", base_url=f"{FAKE}/c/v1", api_key="sk-fake-captures", max_retries=0)
    return llm.invoke([("system", MESSAGES[0]["content"]), ("human", MESSAGES[1]["content"])]).content


def langchain_stream():
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-4o-mini", base_url=f"{FAKE}/c/v1", api_key="sk-fake-captures", max_retries=0,
                     stream_usage=True)
    return "".join(str(c.content) for c in llm.stream([("human", MESSAGES[1]["content"])]))


# ------------------------------------------------------------------ LiteLLM
def litellm_openai_reasoning():
    import litellm

    r = litellm.completion(model="openai/o4-mini", messages=MESSAGES, api_base=f"{FAKE}/r/v1", api_key="sk-fake")
    return r.choices[0].message.content


def litellm_openai_cached():
    import litellm

    r = litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=f"{FAKE}/c/v1", api_key="sk-fake")
    return r.choices[0].message.content


def litellm_openai_stream():
    import litellm

    out = ""
    for chunk in litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=f"{FAKE}/c/v1",
                                    api_key="sk-fake", stream=True, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            out += chunk.choices[0].delta.content
    return out


def litellm_anthropic():
    import litellm

    r = litellm.completion(model="anthropic/claude-sonnet-4-5", api_base=f"{FAKE}/p", api_key="sk-ant-fake", max_tokens=256,
                           messages=[{"role": "system", "content": [{"type": "text", "text": LONG_SYSTEM,
                                                                     "cache_control": {"type": "ephemeral"}}]},
                                     {"role": "user", "content": "What is the capital of France?"}])
    return r.choices[0].message.content


def litellm_error_then_ok():
    import litellm

    first = expect_error(lambda: litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES,
                                                    api_base=f"{FAKE}/e429/v1", api_key="sk-fake", num_retries=0))
    r = litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=f"{FAKE}/p/v1", api_key="sk-fake")
    return [first, r.choices[0].message.content]


SCENARIOS = {name: fn for name, fn in globals().items() if callable(fn) and name.startswith(
    ("openai_", "anthropic_", "langchain_", "litellm_")) and name not in ("openai_client", "anthropic_client")}

if __name__ == "__main__":
    result = {"lib": LIB, "scenario": SCENARIO, "ok": True}
    flush = setup(LIB)
    started = time.time()
    try:
        result["output"] = repr(SCENARIOS[SCENARIO]())[:300]
    except Exception as exc:
        result["ok"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    result["seconds"] = round(time.time() - started, 3)
    try:
        flush()
    except Exception as exc:
        result["flush_error"] = repr(exc)
        traceback.print_exc()
    print("RESULT " + json.dumps(result), flush=True)
