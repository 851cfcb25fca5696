"""Wrapping of client methods and streams: each model call leaves a `Call` on the pipeline queue,
while the app gets the client's own return value, exceptions and stream behaviour back.

Why one module of ~400 lines: sync and async calls and streams are four faces of one wrapper; kept side by side,
a change to one is seen next to the other three."""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Callable, Mapping
from time import perf_counter_ns, time_ns
from typing import Any, Protocol

from . import pipeline
from .accelerator import speedups
from .attribution import _current as _attribution
from .attribution import current_attribution
from .calls import Call, Operation, Summary, app_context, pluck, read_request
from .failures import log_once
from .fingerprints import snapshot

MARK = "__observatory_operation__"
_modules = sys.modules
_OTEL_CONTEXT = "opentelemetry.context"
if speedups is not None:
    speedups.configure_observed(globals(), _attribution)


class StreamAccumulator(Protocol):
    """Reads stream chunks as they pass (cheaply: it runs on the app's thread)."""

    def observe(self, chunk: Any) -> None: ...

    def summary(self) -> Any:
        """A `Summary`, or a whole response object for the background thread to summarize."""


class StreamingOperation(Operation):
    """An operation whose calls can stream; `stream_types` are the client's stream classes."""

    stream_types: tuple[type, ...] = ()

    def accumulator(self, capture_content: bool) -> StreamAccumulator:
        raise NotImplementedError

    def asking_for_usage(self, request: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        """The keyword arguments to send instead of the app's streaming `request` so that the stream
        reports its usage (what that adds to the stream is kept from the app: see `hides`), or
        None to send the app's own request."""
        return None

    def refuses_usage(self, error: BaseException, attributes: Mapping[str, Any]) -> bool:
        """Whether `error` is the server refusing what `asking_for_usage` added; the app's own
        request is then sent instead."""
        return False

    def hides(self, chunk: Any) -> bool:
        """On a stream whose usage only the SDK asked for: True for a chunk the app would not have
        received without the SDK; any other chunk is put back as the app would have received it."""
        return False


def _client_of(resource: Any) -> Any:
    return getattr(resource, "_client", None)


def start_call(
    active: pipeline.Pipeline, operation: Operation, kwargs: Mapping[str, Any], client: Any
) -> tuple[Call | None, int]:
    """A Call stamped with the start time, a snapshot of the request, attribution and trace
    context, and the perf counter; (None, 0) if that fails, and the call goes unrecorded. The
    request's attributes are read now only for a stream or when content is captured (see Call)."""
    try:
        settings = active.settings
        if settings.capture_content or kwargs.get("stream") is True:
            attributes, request = read_request(operation, kwargs, client, settings)
            call = Call(operation, time_ns(), attributes, current_attribution(), app_context())
        else:
            request = snapshot(kwargs)
            call = Call(operation, time_ns(), None, current_attribution(), app_context(), client)
        call.request = request
    except Exception:  # telemetry must never break the app
        log_once("start-call", "observatory_sdk: could not record a call", exc_info=True)
        return None, 0
    return call, perf_counter_ns()


def finish_call(call: Call | None, began: int, response: Any, error: BaseException | None) -> None:
    """Read the response (a provider object, or a Summary gathered from a stream) and queue the
    call. Never raises."""
    if call is None:
        return
    try:
        call.duration_ns = perf_counter_ns() - began
        active = pipeline.current
        if active is None:
            return
        if error is not None:
            call.fail(error)
        if response is not None:
            # Read now (a handful of fields): the response object itself is not kept (see Call).
            call.summary = (
                response if isinstance(response, Summary) else call.operation.summarize(response, active.settings.capture_content)
            )
        active.submit(call)
    except Exception:  # telemetry must never break the app
        log_once("record-call", "observatory_sdk: could not record a call", exc_info=True)


def finish_result(call: Call | None, began: int, result: Any, hide_usage: bool = False) -> Any:
    """After a successful call: a stream gets an observer (and ends the call later); anything
    else is queued now. `hide_usage`: the SDK asked the stream for usage on the app's behalf.
    Returns `result` itself in every case."""
    if call is None:
        return result
    operation = call.operation
    attributes = call.attributes
    if (
        attributes is not None
        and attributes.get("gen_ai.request.stream") is True
        and isinstance(operation, StreamingOperation)
        and isinstance(result, operation.stream_types)
    ):
        try:
            observe_stream(result, call, began, hide_usage)
            return result
        except Exception:
            log_once("observe-stream", "observatory_sdk: could not observe a stream", exc_info=True)
    finish_call(call, began, result, None)
    return result


def observe_stream(stream: Any, call: Call, began: int, hide_usage: bool = False) -> None:
    """Swap the stream's internal iterator for an observing one (which keeps from the app what
    asking for usage added, when `hide_usage`), and hook its close()."""
    operation: StreamingOperation = call.operation  # type: ignore[assignment]
    active = pipeline.current
    capture = active is not None and active.settings.capture_content
    inner = stream._iterator
    is_async = hasattr(inner, "__anext__")
    observed_class = _AsyncObservedIterator if is_async else _ObservedIterator
    observed = observed_class(inner, operation.accumulator(capture), call, began, operation.hides if hide_usage else None)
    close_hook = (_AsyncCloseHook if is_async else _CloseHook)(stream, observed)
    stream._iterator = observed
    stream.close = close_hook


class _ObservedIterator:
    __slots__ = ("_accumulator", "_began", "_call", "_done", "_first", "_hides", "_inner")

    def __init__(
        self,
        inner: Any,
        accumulator: StreamAccumulator,
        call: Call,
        began: int,
        hides: Callable[[Any], bool] | None = None,
    ) -> None:
        self._inner = inner
        self._accumulator: StreamAccumulator | None = accumulator
        self._call = call
        self._began = began
        self._first: int | None = None
        self._done = False
        self._hides = hides

    def _observe(self, chunk: Any) -> None:
        if self._first is None:
            self._first = perf_counter_ns()
        if self._accumulator is not None:
            try:
                self._accumulator.observe(chunk)
            except Exception:  # stop reading this stream, keep serving it
                self._accumulator = None
                log_once("stream-chunk", "observatory_sdk: could not read a stream chunk", exc_info=True)

    def _hidden(self, chunk: Any) -> bool:
        try:
            return self._hides(chunk)  # type: ignore[misc]
        except Exception:  # pass chunks on as they come
            self._hides = None
            log_once("stream-hide", "observatory_sdk: could not filter a stream chunk", exc_info=True)
            return False

    def finish(self, error: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        call = self._call
        try:
            if self._first is not None:
                call.first_chunk_ns = self._first - self._began
            response = self._accumulator.summary() if self._accumulator is not None else Summary()
            self._accumulator = None
        except Exception:
            log_once("stream-summary", "observatory_sdk: could not summarize a stream", exc_info=True)
            response = Summary()
        finish_call(call, self._began, response, error)

    def __del__(self) -> None:
        # A stream dropped without being read to the end or closed still cost money: record it.
        if not self._done:
            self.finish(None)

    def __iter__(self) -> _ObservedIterator:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                chunk = self._inner.__next__()
            except StopIteration:
                self.finish(None)
                raise
            except BaseException as error:
                self.finish(error)
                raise
            self._observe(chunk)
            if self._hides is None or not self._hidden(chunk):
                return chunk


class _AsyncObservedIterator(_ObservedIterator):
    __slots__ = ()

    def __aiter__(self) -> _AsyncObservedIterator:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self._inner.__anext__()
            except StopAsyncIteration:
                self.finish(None)
                raise
            except BaseException as error:
                self.finish(error)
                raise
            self._observe(chunk)
            if self._hides is None or not self._hidden(chunk):
                return chunk


class _CloseHook:
    """Replaces `stream.close` on the instance: ends the call, then runs the class's close().
    Holds the stream weakly so that a dropped stream is still freed (and closed) at once."""

    __slots__ = ("_observed", "_stream")

    def __init__(self, stream: Any, observed: _ObservedIterator) -> None:
        self._stream = weakref.ref(stream)
        self._observed = observed

    def __call__(self) -> Any:
        self._observed.finish(None)
        stream = self._stream()
        return type(stream).close(stream) if stream is not None else None


class _AsyncCloseHook(_CloseHook):
    __slots__ = ()

    async def __call__(self) -> None:
        self._observed.finish(None)
        stream = self._stream()
        if stream is not None:
            await type(stream).close(stream)


def _asking_for_usage(operation: Operation, call: Call | None, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The request to send instead of the app's, asking a stream for its usage; None: the app's."""
    if call is None or call.attributes is None or call.attributes.get("gen_ai.request.stream") is not True:
        return None
    if not isinstance(operation, StreamingOperation):
        return None
    try:
        return operation.asking_for_usage(kwargs, call.attributes)
    except Exception:
        log_once("ask-usage", "observatory_sdk: could not ask a stream for usage", exc_info=True)
        return None


def _refused(call: Call | None, error: Exception) -> bool:
    """Whether the server refused the usage request (so the app's own is sent); never raises."""
    if call is None or call.attributes is None or not isinstance(call.operation, StreamingOperation):
        return False
    try:
        return call.operation.refuses_usage(error, call.attributes)
    except Exception:
        log_once("refused-usage", "observatory_sdk: could not read an error", exc_info=True)
        return False


def _send_asking_for_usage(send: Callable[[], Any], resend: Callable[[], Any], call: Call | None) -> tuple[Any, bool]:
    """`send()` (the request asking for usage); if the server refuses it, `resend()` (the app's
    own request), outside the except block so that an error of that one is raised as the client
    raised it. Returns the result and whether it carries usage the app did not ask for."""
    try:
        return send(), True
    except Exception as error:
        if not _refused(call, error):
            raise
    return resend(), False


async def _await_asking_for_usage(awaitable: Any, resend: Callable[[], Any], call: Call | None) -> tuple[Any, bool]:
    """`_send_asking_for_usage` for async clients: `awaitable` is the request asking for usage."""
    try:
        return await awaitable, True
    except Exception as error:
        if not _refused(call, error):
            raise
    return await resend(), False


async def _finish_awaited(awaitable: Any, call: Call | None, began: int, resend: Callable[[], Any] | None) -> Any:
    """Await the call and finish it; `resend`, when `awaitable` asks for usage on the app's
    behalf: the app's own request, sent if the server refuses that."""
    try:
        if resend is None:
            result, hide_usage = await awaitable, False
        else:
            result, hide_usage = await _await_asking_for_usage(awaitable, resend, call)
    except BaseException as error:
        finish_call(call, began, None, error)
        raise
    return finish_result(call, began, result, hide_usage)


def _observe(
    active: pipeline.Pipeline,
    original: Callable[..., Any],
    operation: Operation,
    is_async: bool,
    client: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """One observed call the general way: streams, async calls, captured content."""
    call, began = start_call(active, operation, kwargs, client)
    asking = _asking_for_usage(operation, call, kwargs)
    hide_usage = False
    try:
        if asking is None:
            result = original(*args, **kwargs)
        elif is_async:
            result = original(*args, **asking)
        else:
            send, resend = functools.partial(original, *args, **asking), functools.partial(original, *args, **kwargs)
            result, hide_usage = _send_asking_for_usage(send, resend, call)
    except BaseException as error:
        finish_call(call, began, None, error)
        raise
    if is_async:
        resend = None if asking is None else functools.partial(original, *args, **kwargs)
        return _finish_awaited(result, call, began, resend)
    return finish_result(call, began, result, hide_usage)


def wrap_method(
    original: Callable[..., Any], operation: Operation, *, is_async: bool, resource: Any = None
) -> Callable[..., Any]:
    """An observing stand-in for `original`. With `resource` it wraps a bound method of that
    resource; without, a class function (self comes first). For async clients the original is
    still called synchronously (so argument errors surface where they did) and its awaitable is
    awaited inside ours. A stream that would not report its usage is asked for it (see
    `StreamingOperation.asking_for_usage`); if the server refuses, the app's own request is sent."""
    bound = resource is not None
    fixed_client = _client_of(resource)
    paths = operation.response_paths

    def failed(
        start_ns: int, began: int, request: Any, attribution: Any, context: Any, error: BaseException, client: Any = fixed_client
    ) -> None:
        call = Call(operation, start_ns, None, attribution, context, client)
        call.request = request
        finish_call(call, began, None, error)

    def record_failed(error: BaseException) -> None:
        log_once("record-call", "observatory_sdk: could not record a call", exc_info=error)

    @functools.wraps(original)
    def observed(*args: Any, **kwargs: Any) -> Any:
        active = pipeline.current
        if active is None:
            return original(*args, **kwargs)
        client = fixed_client if bound else _client_of(args[0] if args else None)
        if is_async or not paths or kwargs.get("stream") is True or active.settings.capture_content:
            return _observe(active, original, operation, is_async, client, args, kwargs)
        # The usual call, inline: no stream, no content; its attributes are read, and the span
        # built, later (see Call), from a tuple record (calls.record_attributes).
        try:
            start_ns = time_ns()
            request = snapshot(kwargs)
            attribution = _attribution.get()
            context = None if (otel := _modules.get(_OTEL_CONTEXT)) is None else otel.get_current()
        except Exception:  # telemetry must never break the app
            log_once("start-call", "observatory_sdk: could not record a call", exc_info=True)
            return original(*args, **kwargs)
        began = perf_counter_ns()
        try:
            result = original(*args, **kwargs)
        except BaseException as error:
            failed(start_ns, began, request, attribution, context, error, client)
            raise
        duration_ns = perf_counter_ns() - began
        try:
            active.submit((operation, start_ns, duration_ns, request, attribution, context, client, pluck(result, paths)))
        except Exception as error:  # telemetry must never break the app
            record_failed(error)
        return result

    if bound and not is_async and paths and speedups is not None:
        # The same, with the usual call done in C (_speedups.Observed); every other call goes to `observed`.
        fast = speedups.Observed(original, operation, tuple(paths), fixed_client, observed, failed, record_failed)
        functools.update_wrapper(fast, original)
        setattr(fast, MARK, operation)
        return fast
    setattr(observed, MARK, operation)
    return observed


def is_wrapped(method: Any) -> bool:
    return getattr(method, MARK, None) is not None


def wrap_instance_method(resource: Any, name: str, operation: Operation, *, is_async: bool) -> None:
    """Patch one resource object (e.g. `client.chat.completions`) unless already observed."""
    method = getattr(resource, name, None)
    if method is None or is_wrapped(method):
        return
    setattr(resource, name, wrap_method(method, operation, is_async=is_async, resource=resource))


def wrap_copies(client: Any, wrap: Callable[[Any], Any]) -> None:
    """Make `client.copy()` / `client.with_options()` return observed clients too."""
    original = getattr(client, "copy", None)
    if original is None or is_wrapped(original):
        return

    @functools.wraps(original)
    def copy(*args: Any, **kwargs: Any) -> Any:
        return wrap(original(*args, **kwargs))

    setattr(copy, MARK, "copy")
    client.copy = copy
    client.with_options = copy


class ClassPatches:
    """Class-level patches made by `instrument()`, kept to be undone by `uninstrument()`."""

    def __init__(self) -> None:
        self._originals: list[tuple[type, str, Any]] = []

    def patch(self, owner: type, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__.get(name)
        if original is None or is_wrapped(original):
            return
        self._originals.append((owner, name, original))
        setattr(owner, name, make(original))

    def undo(self) -> None:
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)
