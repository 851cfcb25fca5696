"""`feedback(...)`: a user's score for one model call, posted to Observatory's `/api/v1/feedback` in a background
thread — never raising into the app, never making it wait (pass `wait=True` to get the status back, e.g. in tests)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from . import pipeline
from .failures import log_once

TIMEOUT_SECONDS = 5.0


def feedback(
    score: float,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    response_id: str | None = None,
    comment: str | None = None,
    wait: bool = False,
) -> int | None:
    """Send a score (e.g. 1 / 0 for thumbs up / down, or a 1–5 rating) for the call with this trace id (and span
    id) or this response id (`answer.id` of an OpenAI or Anthropic answer). The comment is kept only where the
    organization captures content. Returns the HTTP status with `wait=True` (None if it could not be sent)."""
    active = pipeline.current
    settings = active.settings if active is not None else None
    if settings is None or not settings.endpoint or not settings.api_key:
        log_once("feedback-off", "observatory_sdk: feedback needs init(endpoint=..., api_key=...); not sent")
        return None
    body = {"score": score}
    for name, value in (("trace_id", trace_id), ("span_id", span_id), ("response_id", response_id),
                        ("comment", comment)):
        if value:
            body[name] = value
    url = settings.endpoint.rstrip("/").removesuffix("/v1/traces") + "/api/v1/feedback"
    if not url.startswith(("http://", "https://")):
        log_once("feedback-url", "observatory_sdk: the endpoint is not an http(s) URL; feedback not sent")
        return None
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url, method="POST",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.api_key}"})
    if wait:
        return _send(request)
    threading.Thread(target=_send, args=(request,), name="observatory-feedback", daemon=True).start()
    return None


def _send(request: urllib.request.Request) -> int | None:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (the app's own endpoint)
            return response.status
    except urllib.error.HTTPError as error:
        log_once(f"feedback-{error.code}", f"observatory_sdk: feedback refused ({error.code})")
        return error.code
    except Exception:
        log_once("feedback-failed", "observatory_sdk: could not send feedback", exc_info=True)
        return None
