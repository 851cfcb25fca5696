"""OTLP trace decode speed, in process: spans/s for protobuf and OTLP/JSON bodies of 100 and 512 spans.

    .venv/bin/python bench/decode.py [--seconds 1.5] [--out bench/results/decode.json]

The bodies look like what GenAI instrumentations send (about 16 gen_ai.* / observatory.* attributes per span,
a finish-reason array, a first-token event on streamed calls, an error status now and then); the JSON bodies
are the same exports in OTLP/JSON (hex ids, integer enums, int64 as strings). Eight different bodies of each
size are decoded in turn, so attribute caches see realistic repetition rather than one body over and over.

Besides the decoder in ingest/otlp_decode, the run times the alternative for JSON bodies that the hand-written
OTLP/JSON decoder was measured against: orjson, ids rewritten from hex to base64, protobuf's
`json_format.ParseDict` into the generated classes, then the protobuf path. Prints a table and writes the
figures as JSON. Rounds are timed in CPU seconds of this process, so that other jobs on a shared machine do not
count; the figure is the median round, with the fastest beside it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
from google.protobuf import __version__ as protobuf_version  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status  # noqa: E402

from ingest import otlp_decode  # noqa: E402

PB = "application/x-protobuf"
JSON = "application/json"
MODELS = [
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "text-embedding-3-small", "text-embedding-3-small"),
]
BODIES_PER_SIZE = 8
ID_KEYS = ("traceId", "spanId", "parentSpanId")


def any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    return AnyValue(string_value=str(value))


def make_request(spans: int, start_ns: int, rng: random.Random) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in (("service.name", "bench-app"), ("deployment.environment.name", "production")):
        rs.resource.attributes.append(KeyValue(key=key, value=any_value(value)))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "opentelemetry.instrumentation.openai_v2", "2.3b0"
    for i in range(spans):
        provider, model, response_model = rng.choice(MODELS)
        begin = start_ns + i * 1_000_000
        streamed = rng.random() < 0.5
        attrs = {
            "gen_ai.provider.name": provider,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}",
            "gen_ai.usage.input_tokens": rng.randint(100, 5000),
            "gen_ai.usage.cache_read.input_tokens": rng.choice([0, 0, 64]),
            "gen_ai.usage.output_tokens": rng.randint(10, 800),
            "gen_ai.request.stream": streamed,
            "gen_ai.response.finish_reasons": [rng.choice(["stop", "stop", "length", "tool_calls"])],
            "observatory.team": rng.choice(["search", "support", "growth"]),
            "observatory.product": rng.choice(["web", "bot"]),
            "observatory.feature": rng.choice(["answer", "rewrite", "triage"]),
            "user.id": f"user-{rng.randint(1, 500)}",
            "session.id": f"s-{rng.randint(1, 5000)}",
            "server.address": "api.openai.com",
        }
        span = Span(
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            parent_span_id=rng.randbytes(8),
            name=f"chat {model}",
            kind=3,
            start_time_unix_nano=begin,
            end_time_unix_nano=begin + rng.randint(200, 4000) * 1_000_000,
            attributes=[KeyValue(key=key, value=any_value(value)) for key, value in attrs.items()],
        )
        if streamed:
            span.events.add(name="gen_ai.content.first_token", time_unix_nano=begin + 150_000_000)
        if rng.random() < 0.05:
            span.status.CopyFrom(Status(code=2, message="Error code: 429 - rate limit reached"))
        ss.spans.append(span)
    return request


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """The export in OTLP/JSON: protobuf's JSON mapping with integer enums, and hex ids instead of base64."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rs in document.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key in ID_KEYS:
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return orjson.dumps(document)


def json_format_traces(body: bytes) -> otlp_decode.DecodedTraces:
    """The measured alternative: OTLP/JSON through json_format.ParseDict, then the protobuf path."""
    document = orjson.loads(body)
    for rs in document.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key in ID_KEYS:
                    value = span.get(key)
                    if value:
                        span[key] = base64.b64encode(bytes.fromhex(value)).decode()
    request = json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    return otlp_decode.decode_traces(request.SerializeToString(), PB)


def spans_per_second(decode: Callable[[bytes], object], bodies: list[bytes], spans: int, seconds: float) -> tuple[float, float]:
    """(median, fastest) spans/s per CPU second, over rounds that each decode every body once."""
    for body in bodies:  # warm-up: attribute caches, lazily built descriptors
        decode(body)
    rates = []
    spent = 0.0
    while len(rates) < 5 or spent < seconds:
        began = time.process_time()
        for body in bodies:
            decode(body)
        elapsed = time.process_time() - began
        spent += elapsed
        rates.append(spans * len(bodies) / elapsed)
    return statistics.median(rates), max(rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.5, help="CPU seconds timed per case (at least 5 rounds)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "decode.json")
    args = parser.parse_args()

    rng = random.Random(1)
    start_ns = time.time_ns() - 3600 * 10**9
    decoders: dict[str, tuple[str, Callable[[bytes], object]]] = {
        "protobuf": ("pb", lambda body: otlp_decode.decode_traces(body, PB)),
        "json": ("json", lambda body: otlp_decode.decode_traces(body, JSON)),
        "json via json_format.ParseDict": ("json", json_format_traces),
    }
    results = []
    print(f"{'body':<34} {'spans':>6} {'spans/s':>10} {'µs/span':>8} {'fastest round':>14}")
    for spans in (100, 512):
        requests = [make_request(spans, start_ns + n * 10**9, rng) for n in range(BODIES_PER_SIZE)]
        bodies = {"pb": [r.SerializeToString() for r in requests], "json": [otlp_json(r) for r in requests]}
        expected = [otlp_decode.decode_traces(body, PB).spans for body in bodies["pb"]]
        for name, (kind, decode) in decoders.items():
            decoded = [decode(body).spans for body in bodies[kind]]
            assert decoded == expected, f"{name} decodes the bench bodies differently"
            rate, fastest = spans_per_second(decode, bodies[kind], spans, args.seconds)
            results.append(
                {
                    "body": name,
                    "spans_per_request": spans,
                    "spans_per_s": round(rate),
                    "spans_per_s_fastest_round": round(fastest),
                    "us_per_span": round(1e6 / rate, 2),
                    "body_bytes": round(statistics.mean(len(body) for body in bodies[kind])),
                }
            )
            print(f"{name:<34} {spans:>6} {rate:>10,.0f} {1e6 / rate:>8.2f} {fastest:>14,.0f}", flush=True)

    figures = {
        "results": results,
        "python": platform.python_version(),
        "protobuf": protobuf_version,
        "cpu_count": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
