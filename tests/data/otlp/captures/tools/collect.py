#!/usr/bin/env python3
"""File the receiver's raw bodies into captures/<library>-<version>/ and write captures/index.json.

usage: collect.py RAW_DIR      (run with a venv that has opentelemetry-proto, e.g. the project's)

Ground truth comes from what each scenario called on tools/fake_provider.py (see SCENARIOS below); what a
library does not put on its spans at all is listed per call in `telemetry_lacks` (filled in by hand after
reading the captures, in LACKS below), so a test can tell a mapper gap from information that is not there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

HERE = Path(__file__).resolve().parent
CAPTURES = HERE.parent

# library -> (venv, the package whose version names the directory, packages to record)
LIBRARIES = {
    "otel-openai-v2": ("/tmp/cap-otelv2", "opentelemetry-instrumentation-openai-v2",
                       ["opentelemetry-instrumentation-openai-v2", "opentelemetry-util-genai", "openai"]),
    "openllmetry": ("/tmp/cap-traceloop", "opentelemetry-instrumentation-openai",
                    ["opentelemetry-instrumentation-openai", "opentelemetry-instrumentation-anthropic",
                     "opentelemetry-semantic-conventions-ai", "openai", "anthropic"]),
    "openinference-langchain": ("/tmp/cap-langchain", "openinference-instrumentation-langchain",
                                ["openinference-instrumentation-langchain", "openinference-instrumentation-openai",
                                 "openinference-instrumentation", "langchain-openai", "langchain-core", "openai"]),
    "litellm": ("/tmp/cap-litellm", "litellm", ["litellm", "openai"]),
    "mlflow": ("/tmp/cap-mlflow", "mlflow-skinny", ["mlflow-skinny", "openai", "anthropic"]),
    "mlflow-semconv": ("/tmp/cap-mlflow", "mlflow-skinny", ["mlflow-skinny", "openai", "anthropic"]),
    "logfire": ("/tmp/cap-logfire", "logfire", ["logfire", "openai"]),
    "openlit": ("/tmp/cap-openlit", "openlit", ["openlit", "openai", "anthropic"]),
}
COMMON = ["opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "opentelemetry-semantic-conventions"]


def openai_call(model: str, profile: str, **extra) -> dict:
    snapshot = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "o4-mini": "o4-mini-2025-04-16"}[model]
    usage = {"p": (1200, 0, 85, 0), "c": (2006, 1792, 93, 0), "r": (1200, 1024, 85, 64)}
    if profile.startswith("e"):
        call = {"provider": "openai", "canonical_model": model, "request_model": model, "response_model": None,
                "input_tokens": 0, "cached_input_tokens": 0, "cache_write_tokens": 0, "output_tokens": 0,
                "reasoning_tokens": 0, "status": "error", "error_type": "rate_limit" if profile == "e429" else "server_error",
                "http_status": int(profile[1:]), "streaming": False}
    else:
        prompt, cached, completion, reasoning = usage[profile]
        call = {"provider": "openai", "canonical_model": model, "request_model": model, "response_model": snapshot,
                "input_tokens": prompt, "cached_input_tokens": cached, "cache_write_tokens": 0, "output_tokens": completion,
                "reasoning_tokens": reasoning, "status": "ok", "streaming": False}
    call.update(extra)
    return call


ANTHROPIC = {"provider": "anthropic", "canonical_model": "claude-sonnet-4-5", "request_model": "claude-sonnet-4-5",
             "response_model": "claude-sonnet-4-5-20250929", "input_tokens": 1842, "cached_input_tokens": 1500,
             "cache_write_tokens": 300, "output_tokens": 77, "reasoning_tokens": 0, "status": "ok", "streaming": False}

# scenario -> (description, calls in the order they were made)
SCENARIOS = {
    "openai_chat": ("OpenAI chat.completions, non-streaming, gpt-4o-mini, no cache", [openai_call("gpt-4o-mini", "p")]),
    "openai_chat_cached": ("OpenAI chat.completions, non-streaming, 1792 of 2006 prompt tokens cached",
                           [openai_call("gpt-4o-mini", "c")]),
    "openai_chat_reasoning": ("OpenAI chat.completions, non-streaming, o4-mini: 1024 of 1200 cached, 64 of 85 output reasoning",
                              [openai_call("o4-mini", "r")]),
    "openai_stream_no_usage": ("OpenAI chat.completions stream=True WITHOUT stream_options.include_usage: the API sends no usage, "
                               "so the provider bills 1200/85 but no telemetry can know it",
                               [openai_call("gpt-4o-mini", "p", streaming=True, usage_in_stream=False)]),
    "openai_stream_usage": ("OpenAI chat.completions stream=True with stream_options.include_usage (usage in the last chunk), cached",
                            [openai_call("gpt-4o-mini", "c", streaming=True)]),
    "openai_error_then_ok": ("Two calls with request model gpt-4o-mini: the first answered 429 (rate limit), the second 200 "
                             "with response model gpt-4o-mini-2024-07-18",
                             [openai_call("gpt-4o-mini", "e429"), openai_call("gpt-4o-mini", "p")]),
    "anthropic_messages": ("Anthropic messages.create, non-streaming, system prompt with cache_control: 42 uncached + 1500 cache "
                           "read + 300 cache write input (Anthropic's input_tokens=42 excludes cache), 77 output", [ANTHROPIC]),
    "anthropic_stream": ("Anthropic messages.stream() helper, same usage; message_start carries output_tokens=1, message_delta "
                         "the final 77", [dict(ANTHROPIC, streaming=True)]),
    "anthropic_stream_raw": ("Anthropic messages.create(stream=True), same usage", [dict(ANTHROPIC, streaming=True)]),
    "langchain_chat": ("LangChain ChatOpenAI.invoke (gpt-4o-mini, cached profile) with OpenInference's LangChain AND OpenAI "
                       "instrumentations: one model call, reported by two spans", [openai_call("gpt-4o-mini", "c")]),
    "langchain_stream": ("LangChain ChatOpenAI.stream with stream_usage=True (include_usage), both instrumentations",
                         [openai_call("gpt-4o-mini", "c", streaming=True)]),
    "litellm_openai_reasoning": ("litellm.completion openai/o4-mini: 1024 of 1200 cached, 64 of 85 reasoning",
                                 [openai_call("o4-mini", "r")]),
    "litellm_openai_cached": ("litellm.completion openai/gpt-4o-mini: 1792 of 2006 cached", [openai_call("gpt-4o-mini", "c")]),
    "litellm_openai_stream": ("litellm.completion openai/gpt-4o-mini stream=True with include_usage, cached",
                              [openai_call("gpt-4o-mini", "c", streaming=True)]),
    "litellm_anthropic": ("litellm.completion anthropic/claude-sonnet-4-5 with cache_control", [ANTHROPIC]),
    "litellm_error_then_ok": ("litellm.completion openai/gpt-4o-mini answered 429, then a successful one",
                              [openai_call("gpt-4o-mini", "e429"), openai_call("gpt-4o-mini", "p")]),
}

# (library, scenario) -> per call: fields the library does not put on its spans at all
ALL_TOKENS = ["input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"]
NO_DETAILS = ["cached_input_tokens", "reasoning_tokens"]
LACKS: dict[tuple[str, str], list[list[str]]] = {
    # opentelemetry-instrumentation-openai-v2 2.4b0: no cache or reasoning counts, no stream flag at all
    ("otel-openai-v2", "openai_chat"): [NO_DETAILS],
    ("otel-openai-v2", "openai_chat_cached"): [NO_DETAILS],
    ("otel-openai-v2", "openai_chat_reasoning"): [NO_DETAILS],
    ("otel-openai-v2", "openai_stream_no_usage"): [[*ALL_TOKENS, "streaming"]],
    ("otel-openai-v2", "openai_stream_usage"): [[*NO_DETAILS, "streaming"]],
    ("otel-openai-v2", "openai_error_then_ok"): [[], NO_DETAILS],
    # OpenLLMetry: no reasoning count on chat streams
    ("openllmetry", "openai_stream_no_usage"): [ALL_TOKENS],
    ("openllmetry", "openai_stream_usage"): [["reasoning_tokens"]],
    # LiteLLM's stream span reports the request model as gen_ai.response.model
    ("litellm", "litellm_openai_stream"): [["response_model"]],
    # MLflow with MLFLOW_ENABLE_OTEL_GENAI_SEMCONV=true: only input/output totals
    ("mlflow-semconv", "openai_chat_reasoning"): [["cached_input_tokens", "cache_write_tokens", "reasoning_tokens"]],
    ("mlflow-semconv", "openai_stream_usage"): [["cached_input_tokens", "cache_write_tokens", "reasoning_tokens"]],
    ("mlflow-semconv", "anthropic_messages"): [["cached_input_tokens", "cache_write_tokens", "reasoning_tokens"]],
    ("logfire", "openai_stream_no_usage"): [ALL_TOKENS],
    # openlit: no reasoning count on chat completions
    ("openlit", "openai_chat_reasoning"): [["reasoning_tokens"]],
}


def lacks(library: str, scenario: str, index: int) -> list[str]:
    found = LACKS.get((library, scenario))
    return list(found[index]) if found and index < len(found) else []


def hexify(node):
    if isinstance(node, dict):
        return {k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str) else hexify(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [hexify(v) for v in node]
    return node


def packages(venv: str, names: list[str]) -> dict[str, str]:
    out = subprocess.run([f"{venv}/bin/pip", "list", "--format", "json"], capture_output=True, text=True, check=True).stdout
    found = {row["name"].lower(): row["version"] for row in json.loads(out)}
    return {name: found[name] for name in names + COMMON if name in found}


def main(raw: Path) -> None:
    index = []
    for library, (venv, main_package, names) in LIBRARIES.items():
        if not (raw / library).is_dir():
            continue
        versions = packages(venv, names)
        version = versions[main_package]
        directory = f"{library}-{version}"
        (CAPTURES / directory).mkdir(exist_ok=True)
        for scenario_dir in sorted((raw / library).iterdir()):
            scenario = scenario_dir.name
            bodies = sorted(p for p in scenario_dir.iterdir() if "-traces." in p.name and not p.name.endswith(".meta.json"))
            if not bodies:
                print(f"no traces for {library}/{scenario}", file=sys.stderr)
                continue
            files = []
            for n, body in enumerate(bodies, 1):
                meta = json.loads(Path(str(body) + ".meta.json").read_text())
                ext = body.name.split("-traces.", 1)[1]
                name = f"{scenario}.{ext}" if len(bodies) == 1 else f"{scenario}.part{n}.{ext}"
                data = body.read_bytes()
                (CAPTURES / directory / name).write_bytes(data)
                request = ExportTraceServiceRequest()
                request.ParseFromString(data)
                decoded = hexify(json_format.MessageToDict(request, use_integers_for_enums=True))
                (CAPTURES / directory / (name + ".decoded.json")).write_text(json.dumps(decoded, indent=1) + "\n")
                spans = [(ss.scope.name + (" " + ss.scope.version if ss.scope.version else ""), span.name)
                         for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
                files.append({
                    "file": f"{directory}/{name}", "decoded": f"{directory}/{name}.decoded.json", "signal": "traces",
                    "content_type": meta["content_type"], "content_encoding": meta["content_encoding"] or None,
                    "user_agent": meta["user_agent"], "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                    "span_count": len(spans), "span_names": [name for _, name in spans],
                    "scopes": sorted({scope for scope, _ in spans}),
                })
            description, calls = SCENARIOS[scenario]
            calls = [dict(call, telemetry_lacks=lacks(library, scenario, i)) for i, call in enumerate(calls)]
            index.append({
                "library": library, "version": version, "ecosystem": "python", "python": "3.11.7",
                "packages": versions, "captured": "2026-12-03", "scenario": scenario, "description": description,
                "files": files, "ground_truth": {"model_calls": len(calls), "calls": calls},
            })
    (CAPTURES / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"{len(index)} scenarios")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
