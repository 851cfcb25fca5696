"""Error pages for people: our own 404, a 500 without internals, and a 503 that says the database is away.

Django calls `server_error` from inside the `except` that caught the failure, so the exception is still at hand:
a database that does not answer (connection refused, dropped, timed out) is a 503 with Retry-After, like the
API's, rather than a 500. Both pages are rendered without the request's context (no session, no user: they
would need the database) and log what happened.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) is the database being unreachable rather than a bug."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OperationalError | InterfaceError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def unavailable_response() -> HttpResponse:
    response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def server_error(request, *args, **kwargs) -> HttpResponse:
    """handler500: a 503 page when the database is unreachable, else a plain 500 page."""
    exc = sys.exc_info()[1]
    if database_unavailable(exc):
        log.warning("database unavailable while serving %s %s: %s", request.method, request.path, exc)
        return unavailable_response()
    return HttpResponse(render_to_string("500.html"), status=500)
