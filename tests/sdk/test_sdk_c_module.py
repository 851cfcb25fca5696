"""The SDK's C module (`observatory_sdk._speedups`) writes exactly what the Python code writes: the
canonical request text (so the hashes do not depend on whether the SDK could be compiled) and a span's
OTLP attributes."""

from __future__ import annotations

import enum
import math
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from observatory_sdk import calls, fingerprints, otlp
from observatory_sdk.fingerprints import _NotHashable, _text_py, canonical_text, snapshot, snapshot_py

C_TEXT = fingerprints._c_text
needs_c = pytest.mark.skipif(C_TEXT is None, reason="the C module is not built here, or OBSERVATORY_SDK_PURE_PYTHON turns it off")


class Colour(enum.StrEnum):
    RED = "red"


class Level(int, enum.Enum):
    HIGH = 3


def _both(value, depth=0, shared=True):
    """(C text, Python text), each the text or the exception type it raised."""
    results = []
    for writer in (C_TEXT, _text_py):
        fingerprints._text = writer
        try:
            results.append(writer(value, depth, {} if shared else None))
        except (_NotHashable, TypeError, ValueError, RecursionError) as error:
            results.append(type(error))
        finally:
            fingerprints._text = C_TEXT
    return tuple(results)


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet="ab\u00e9\u4e2d\U0001f600", min_size=4090, max_size=4110),
    st.binary(max_size=20),
    st.sampled_from([Colour.RED, Level.HIGH, "x" * 9000, "\ud800 lone surrogate"]),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(["role", "content", "model", "x" * 5000]))
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, min_size=60, max_size=90),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=120,
)


@needs_c
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(value=values, depth=st.integers(min_value=0, max_value=3), shared=st.booleans())
def test_the_c_writer_writes_what_the_python_writer_writes(value, depth, shared):
    c_text, python_text = _both(value, depth, shared)

    assert c_text == python_text


@needs_c
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(value=values)
def test_snapshots_read_the_same_in_c_and_python(value):
    """Snapshots hold the SDK's own list type for long lists: the C writer hands them back to Python."""
    c_text, python_text = _both(snapshot({"messages": value, "n": [value] * 70}))

    assert c_text == python_text


def _shape(value):
    """The value with the type of every container and leaf spelled out (so that a list and a tuple,
    or 1 and True, do not compare equal)."""
    if isinstance(value, dict):
        return (type(value).__name__, [(_shape(key), _shape(item)) for key, item in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, getattr(value, "size", None), [_shape(item) for item in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value if isinstance(value, str | int | float | bytes) or value is None else id(value))


def _snapshots(value):
    c_copy = snapshot(value)
    fingerprints.snapshot = snapshot_py
    try:
        python_copy = snapshot_py(value)
    finally:
        fingerprints.snapshot = snapshot
    return c_copy, python_copy


@needs_c
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(value=values)
def test_the_c_snapshot_copies_what_the_python_snapshot_copies(value):
    c_copy, python_copy = _snapshots({"messages": value, "n": [value] * 70, "t": (value,)})

    assert _shape(c_copy) == _shape(python_copy)


@needs_c
def test_a_snapshot_is_a_copy_the_app_can_no_longer_change():
    messages = [{"role": "user", "content": "Hi", "parts": [{"text": "a"}]}]
    request = {"model": "m", "messages": messages, "stop": ("x",)}
    copy = snapshot(request)
    messages[0]["content"] = "changed"
    messages[0]["parts"].append({"text": "b"})
    messages.append({"role": "user", "content": "more"})

    assert copy == {"model": "m", "messages": [{"role": "user", "content": "Hi", "parts": [{"text": "a"}]}], "stop": ("x",)}
    deep: list = []
    for _ in range(60):
        deep = [deep]
    assert _shape(_snapshots(deep)[0]) == _shape(_snapshots(deep)[1])
    assert _shape(snapshot(iter([1]))) == _shape(snapshot_py(iter([1])))


@needs_c
def test_edge_values_write_the_same():
    cyclic: list = []
    cyclic.append(cyclic)
    shared_message = {"role": "user", "content": "Hi"}
    cases = [
        -0.0,
        math.nan,
        float("inf"),
        10**5000,  # too many digits for str(): not hashable in either
        {1: "a", "b": 2},  # keys that cannot be sorted together
        {True: 1, 2: 0},
        cyclic,
        [shared_message, shared_message, [shared_message]],
        "y" * 4097,
        "z" * 4096,
        "\u4e2d" * 100_003,
        list(range(65)),
        tuple(range(64)),
        [str(n) for n in range(1000)],
        bytearray(b"\x00\xff" * 3000),
        iter([1, 2]),
        {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["bottom"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
    ]
    for value in cases:
        c_text, python_text = _both(value)
        assert c_text == python_text, value


@needs_c
def test_a_container_met_twice_is_written_once_and_reused_by_both_writers():
    message = {"role": "system", "content": "Be brief."}
    seen: dict[int, str] = {}
    first = canonical_text({"system": [message]}, seen)
    fingerprints._text = _text_py
    try:
        second = canonical_text([message], seen)  # the Python writer reads what C remembered
    finally:
        fingerprints._text = C_TEXT

    assert seen[id(message)] == "d2:s7:contents9:Be brief.s4:roles6:system"
    assert first == "d1:s6:systeml1:" + seen[id(message)]
    assert second == "l1:" + seen[id(message)]


def test_the_c_module_is_built_wherever_a_c_compiler_is():
    """An error in the C source would otherwise go unnoticed: the build is optional and the SDK
    falls back to Python without a word."""
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler on this machine")
    if os.environ.get("OBSERVATORY_SDK_PURE_PYTHON"):
        pytest.skip("the C writer is turned off")

    assert C_TEXT is not None
    assert otlp._c_encode_attributes is not None and otlp._c_encode_span is not None
    assert fingerprints.snapshot is fingerprints._c_snapshot is not None


def test_pure_python_can_be_asked_for():
    code = (
        "from observatory_sdk import fingerprints as f, otlp; "
        "print(f._text is f._text_py, otlp._c_encode_attributes is None and otlp._c_encode_span is None, "
        "f.fingerprint({'a': [1]}))"
    )
    pure = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "OBSERVATORY_SDK_PURE_PYTHON": "1"}, capture_output=True, text=True
    )
    default = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert pure.stdout.split() == ["True", "True", fingerprints.fingerprint({"a": [1]})]
    assert default.stdout.split()[2] == pure.stdout.split()[2]


attribute_values = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=False),
        st.text(max_size=30),
        st.binary(max_size=10),
        st.sampled_from([Colour.RED, Level.HIGH, "\ud800 lone surrogate", bytearray(b"ab"), None, math.inf]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple)),
    max_leaves=12,
)


@needs_c
@settings(max_examples=300, deadline=None)
@given(attributes=st.dictionaries(st.text(max_size=20), attribute_values, max_size=12))
def test_the_c_encoder_writes_the_attributes_the_python_encoder_writes(attributes):
    assert otlp._c_encode_attributes(attributes) == otlp.encode_attributes_py(attributes)


@needs_c
def test_a_span_encoded_in_c_decodes_to_its_attributes():
    from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

    attributes = {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.stream": False,
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.request.temperature": 0.25,
        "gen_ai.response.finish_reasons": ("stop", "length"),
        "observatory.offset": -3,
    }
    encoded = otlp.encode_span(1, 2, None, False, "chat gpt-4o-mini", otlp.SPAN_KIND_CLIENT, 10, 20, attributes)
    scope = ScopeSpans()
    scope.ParseFromString(encoded)  # a Span with its field tag: field 2 of ScopeSpans
    (span,) = scope.spans
    values = {item.key: item.value for item in span.attributes}

    assert values["gen_ai.request.model"].string_value == "gpt-4o-mini"
    assert values["gen_ai.request.stream"].HasField("bool_value") and not values["gen_ai.request.stream"].bool_value
    assert values["gen_ai.usage.input_tokens"].int_value == 1200
    assert values["gen_ai.request.temperature"].double_value == 0.25
    assert [item.string_value for item in values["gen_ai.response.finish_reasons"].array_value.values] == ["stop", "length"]
    assert values["observatory.offset"].int_value == -3


@needs_c
@settings(max_examples=300, deadline=None)
@given(
    ids=st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 2**64 - 1), st.none() | st.integers(0, 2**64 - 1)),
    remote=st.booleans(),
    name=st.text(max_size=40) | st.just("chat \ud800 lone surrogate"),
    kind=st.integers(0, 5),
    times=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    attributes=st.dictionaries(st.text(max_size=20), attribute_values, max_size=8),
    status=st.tuples(st.integers(0, 2), st.none() | st.text(max_size=30)),
)
def test_the_c_encoder_writes_the_span_the_python_encoder_writes(ids, remote, name, kind, times, attributes, status):
    arguments = (*ids, remote, name, kind, *times, attributes, *status)
    assert otlp._c_encode_span(*arguments) == otlp.encode_span_py(*arguments)


@needs_c
@pytest.mark.parametrize("trace_id", [-1, 2**128])
def test_an_id_out_of_range_is_refused_by_both_encoders(trace_id):
    for encode in (otlp._c_encode_span, otlp.encode_span_py):
        with pytest.raises(OverflowError):
            encode(trace_id, 1, None, False, "chat", otlp.SPAN_KIND_CLIENT, 1, 2, {}, 0, None)


@needs_c
def test_a_span_with_a_parent_and_an_error_decodes_as_sent():
    from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Status

    encoded = otlp.encode_span(2**127 + 5, 2**63 + 1, 7, True, "chat", otlp.SPAN_KIND_CLIENT, 10, 2**63 + 20,
                               {"error.type": "RateLimitError"}, otlp.STATUS_ERROR, "RateLimitError")
    scope = ScopeSpans()
    scope.ParseFromString(encoded)
    (span,) = scope.spans

    assert int.from_bytes(span.trace_id, "big") == 2**127 + 5 and int.from_bytes(span.span_id, "big") == 2**63 + 1
    assert int.from_bytes(span.parent_span_id, "big") == 7
    assert span.flags == 0x300  # the parent is remote
    assert span.end_time_unix_nano == 2**63 + 20
    assert span.status.code == Status.STATUS_CODE_ERROR and span.status.message == "RateLimitError"


@needs_c
def test_any_mapping_of_attributes_encodes_as_its_dict_would():
    """An OpenTelemetry SDK span's attributes are a mapping, not a dict (encode_readable_span)."""
    from types import MappingProxyType

    attributes = {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 12}
    assert otlp.encode_span is otlp._c_encode_span
    assert otlp.encode_span(1, 2, None, False, "chat", 3, 10, 20, MappingProxyType(attributes)) == \
        otlp.encode_span_py(1, 2, None, False, "chat", 3, 10, 20, attributes)


class _Broken:
    """An object whose attribute raises something other than AttributeError."""

    @property
    def usage(self):
        raise KeyError("usage")


objects = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["id", "usage", "choices", "finish_reason", "tokens"]), inner, max_size=4).map(
            lambda fields: SimpleNamespace(**fields)
        ),
    ),
    max_leaves=30,
)
paths = st.lists(
    st.lists(st.sampled_from(["id", "usage", "choices", "finish_reason", "tokens", calls.STAR]), min_size=1, max_size=4).map(
        tuple
    ),
    max_size=6,
).map(tuple)


@needs_c
@settings(max_examples=300, deadline=None)
@given(objects, paths)
def test_pluck_reads_in_c_what_it_reads_in_python(response, wanted):
    assert calls.pluck is fingerprints.speedups.pluck
    assert calls.pluck(response, wanted) == calls.pluck_py(response, wanted)


@needs_c
def test_pluck_maps_star_over_lists_and_raises_what_an_attribute_raises():
    response = SimpleNamespace(choices=[SimpleNamespace(finish_reason="stop"), SimpleNamespace()], usage=None)
    wanted = (("choices", calls.STAR, "finish_reason"), ("usage", "prompt_tokens"), ("id",), ("usage", calls.STAR))

    assert calls.pluck(response, wanted) == calls.pluck_py(response, wanted) == (("stop", None), None, None, None)
    for pluck in (calls.pluck, calls.pluck_py):
        with pytest.raises(KeyError):
            pluck(_Broken(), (("usage",),))


requests = st.dictionaries(
    st.sampled_from(["model", "messages", "input", "instructions", "system", "tools", "max_tokens", "stream", "user"]),
    values,
    max_size=6,
)


@needs_c
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(requests, st.sampled_from(["chat", "responses", "anthropic"]), st.booleans())
def test_both_hashes_are_the_same_in_c_and_python(request, kind, known):
    from observatory_sdk.integrations.anthropic import MESSAGES
    from observatory_sdk.integrations.openai import CHAT, RESPONSES

    operation = {"chat": CHAT, "responses": RESPONSES, "anthropic": MESSAGES}[kind]
    assert calls._hash_pair is calls._hash_pair_c
    if not known:
        calls._prefix_hashes.clear()
    try:
        in_c = calls._hash_pair_c(operation, request)
    except Exception as error:  # then Python must fail alike
        with pytest.raises(type(error)):
            calls._hash_pair_py(operation, request)
        return
    calls._prefix_hashes.clear()
    assert calls._hash_pair_py(operation, request) == in_c
    assert calls._hash_pair_c(operation, request) == in_c  # from the prefix table this time


@needs_c
def test_the_prefix_table_is_bounded_in_c_too(monkeypatch):
    from observatory_sdk.integrations.openai import CHAT

    monkeypatch.setattr(calls, "PREFIX_HASHES_KEPT", 3)
    calls._prefix_hashes.clear()
    for n in range(7):
        calls._hash_pair_c(CHAT, {"model": "m", "messages": [{"role": "system", "content": f"prompt {n}"}]})
        assert 1 <= len(calls._prefix_hashes) <= 3


# -- the usual call's attributes read in C (calls.record_attributes) ------------------------------------------------


def _record_operations():
    from observatory_sdk.integrations.anthropic import MESSAGES
    from observatory_sdk.integrations.openai import CHAT

    return {"openai": CHAT, "anthropic": MESSAGES}


message_items = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", None, 3]), "content": values}
    ),
    st.dictionaries(st.sampled_from(["role", "content", "name"]), values, max_size=3),
    values,
)
record_requests = st.dictionaries(
    st.sampled_from(
        ["model", "messages", "system", "tools", "functions", "max_tokens", "max_completion_tokens", "temperature",
         "top_p", "top_k", "stream", "stream_options", "user", "safety_identifier", "metadata", "prompt_cache_key"]
    ),
    st.one_of(
        values,
        st.lists(message_items, max_size=4),
        st.lists(message_items, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["user_id", "x"]), values, max_size=2),
        st.sampled_from([fingerprints.OMITTED, True, False, 0, 1, 0.5, "", "someone"]),
    ),
    max_size=8,
)
counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6), st.booleans(), st.floats(allow_nan=False))
response_values = st.one_of(
    st.tuples(
        st.one_of(st.none(), st.text(max_size=8)), st.one_of(st.none(), st.text(max_size=8)),
        st.one_of(st.none(), st.text(max_size=5), st.lists(st.one_of(st.none(), st.text(max_size=5)), max_size=3)),
        *[counts] * 6,
    ),
    st.lists(counts, max_size=10).map(tuple),
)


@needs_c
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.sampled_from(["openai", "anthropic"]),
    record_requests,
    response_values,
    st.dictionaries(st.sampled_from(["team", "user", "feature"]), st.text(max_size=6), max_size=3),
    st.booleans(),
)
def test_the_usual_calls_attributes_are_the_same_in_c_and_python(provider, request, values, attribution, known):
    operation = _record_operations()[provider]
    if provider == "openai" and len(values) < 9:
        values = (*values, *[None] * (9 - len(values)))
    record = (operation, 0, 1, request, attribution, None, None, values)
    settings_ = _settings(team="search")
    assert calls.record_attributes is calls._record_attributes_c
    if not known:
        calls._prefix_hashes.clear()
    try:
        in_python = calls.record_attributes_py(record, settings_)
    except Exception as error:  # then the C way (which declines to the Python way) fails alike
        with pytest.raises(type(error)):
            calls.record_attributes(record, settings_)
        return
    assert list(calls.record_attributes(record, settings_).items()) == list(in_python.items())


@needs_c
def test_the_usual_requests_are_read_in_c_not_handed_back():
    """The C reader takes the requests and responses of the usual shapes itself (None would mean the Python code ran),
    and writes what the Python code writes, in the same order."""
    operations = _record_operations()
    settings_ = _settings(team="search", product="bot")
    chat = (
        operations["openai"], 0, 1,
        {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
         "max_tokens": 50, "temperature": 1, "stream": False, "user": "u-7"},
        {"feature": "answer"}, None, None,
        ("chatcmpl-1", "gpt-4o-mini-2024-07-18", ("stop", None), 12, 4, None, 3, None, 15),
    )
    message = (
        operations["anthropic"], 0, 1,
        {"model": "claude-sonnet-4-5", "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}],
         "max_tokens": 64, "top_k": 5, "metadata": {"user_id": "u-9"}},
        {}, None, None,
        ("msg_1", "claude-sonnet-4-5-20250929", "end_turn", 10, 20, 5, 7),
    )
    for record in (chat, message):
        operation, _, _, request, attribution, _, _, values = record
        in_c = speedups_module().record_attributes(
            operation.record_kind, calls._fixed_attributes(operation, None), request, values,
            calls._request_head(operation), calls._prefix_hashes, calls.PREFIX_HASHES_KEPT,
            calls._attribution_items(settings_, attribution),
        )
        assert in_c is not None
        assert list(in_c.items()) == list(calls.record_attributes_py(record, settings_).items())
    anthropic_attributes = calls.record_attributes(message, settings_)
    assert anthropic_attributes["gen_ai.usage.input_tokens"] == 35  # 10 + 20 cached + 5 written to the cache
    assert anthropic_attributes["gen_ai.request.top_k"] == 5.0
    assert anthropic_attributes["user.id"] == "u-9"
    chat_attributes = calls.record_attributes(chat, settings_)
    assert chat_attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert chat_attributes["user.id"] == "u-7" and chat_attributes["observatory.feature"] == "answer"
    assert "gen_ai.usage.cache_creation.input_tokens" not in chat_attributes


def _settings(team=None, product=None):
    from observatory_sdk.settings import Settings

    return Settings(None, None, team, product, None, None, False, None, 100, False)


def speedups_module():
    from observatory_sdk.accelerator import speedups

    return speedups
