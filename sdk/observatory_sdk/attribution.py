"""Who a model call is for (team, product, feature, user, session, environment), carried in a
context variable so it follows asyncio tasks; new threads need `copy_context()`."""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "observatory_attribution", default=MappingProxyType({})
)


def current_attribution() -> Mapping[str, str]:
    """The merged attribution of every enclosing `attribute()` block (inner values win)."""
    return _current.get()


def copy_context() -> contextvars.Context:
    """A copy of the current context, attribution included, to run work in another thread.

    Context variables do not flow into `threading.Thread` or `ThreadPoolExecutor.submit`
    by themselves (asyncio tasks and `asyncio.to_thread` do copy them)::

        executor.submit(observatory_sdk.copy_context().run, summarize, document)
    """
    return contextvars.copy_context()


class attribute:  # reads as a verb at the call site: `with attribute(team=...)`
    """Attribute the model calls made inside a block or function to a team, product, feature, ...

    Use it as a context manager (``with attribute(team="search"):``) or as a decorator on a
    sync or async function (``@attribute(feature="summarize")``). Nested blocks merge, inner
    values win. Values are converted to strings; ``None`` leaves the outer value in place.
    """

    __slots__ = ("_tokens", "_values")

    def __init__(
        self,
        *,
        team: str | None = None,
        product: str | None = None,
        feature: str | None = None,
        user: str | None = None,
        session: str | None = None,
        environment: str | None = None,
    ) -> None:
        given = {
            "team": team,
            "product": product,
            "feature": feature,
            "user": user,
            "session": session,
            "environment": environment,
        }
        self._values = {key: str(value) for key, value in given.items() if value is not None}
        self._tokens: list[contextvars.Token[Mapping[str, str]]] = []

    def _enter(self) -> contextvars.Token[Mapping[str, str]]:
        return _current.set(MappingProxyType({**_current.get(), **self._values}))

    def __enter__(self) -> attribute:
        self._tokens.append(self._enter())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _current.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError("attribute() decorates plain and async functions, not generators")
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                token = self._enter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    _current.reset(token)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            token = self._enter()
            try:
                return func(*args, **kwargs)
            finally:
                _current.reset(token)

        return run  # type: ignore[return-value]
