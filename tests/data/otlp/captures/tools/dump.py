#!/usr/bin/env python3
"""Print the spans of OTLP trace bodies (protobuf or JSON, gzip or not) compactly: one block per span.

usage: dump.py FILE...   (runs in any venv with opentelemetry-proto, e.g. the project's)
"""

from __future__ import annotations

import gzip
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def load(path: str) -> ExportTraceServiceRequest:
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    request = ExportTraceServiceRequest()
    if path.endswith((".json", ".json.gz")):
        json_format.Parse(raw, request, ignore_unknown_fields=True)
    else:
        request.ParseFromString(raw)
    return request


def main() -> None:
    for path in sys.argv[1:]:
        print(f"=== {path}")
        for rs in load(path).resource_spans:
            resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
            print("resource:", json.dumps({k: v for k, v in resource.items() if not k.startswith("telemetry.")}))
            for ss in rs.scope_spans:
                for span in ss.spans:
                    print(f"--- span {span.name!r} scope={ss.scope.name} {ss.scope.version} id={span.span_id.hex()} "
                          f"parent={span.parent_span_id.hex() or '-'} trace={span.trace_id.hex()[:8]} "
                          f"status={span.status.code} {span.status.message[:80]!r} "
                          f"dur_ms={(span.end_time_unix_nano - span.start_time_unix_nano) / 1e6:.1f}")
                    for kv in span.attributes:
                        text = json.dumps(value(kv.value))
                        print(f"    {kv.key} = {text[:300]}{'...' if len(text) > 300 else ''}")
                    for event in span.events:
                        print(f"    [event] {event.name} {[kv.key for kv in event.attributes]}")


if __name__ == "__main__":
    main()
