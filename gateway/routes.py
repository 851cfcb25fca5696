"""What the gateway serves: each route's provider, operation and upstream path, and errors in each provider's shape.

Pure data: a client of OpenAI or Anthropic must get back the JSON its library already parses, whoever refuses
(the provider, or the gateway itself with our own message).
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.mappers.normalize.providers import provider_from_model

OPENAI = "openai"
ANTHROPIC = "anthropic"
# Each provider's public API: the upstream base URL when an organization names no other (gateway.upstreams).
PUBLIC_BASE_URLS = {OPENAI: "https://api.openai.com/v1", ANTHROPIC: "https://api.anthropic.com/v1"}


@dataclass(frozen=True)
class Route:
    path: str  # what the client posts to (its base_url + the library's path)
    provider: str
    operation: str  # the call record's operation: chat, responses, embeddings
    upstream_path: str  # appended to the provider's base URL; never taken from the request

    @property
    def streams(self) -> bool:
        return self.operation != "embeddings"


ROUTES = {
    route.path: route
    for route in (
        Route("/v1/chat/completions", OPENAI, "chat", "/chat/completions"),
        Route("/v1/responses", OPENAI, "responses", "/responses"),
        Route("/v1/embeddings", OPENAI, "embeddings", "/embeddings"),
        Route("/v1/messages", ANTHROPIC, "chat", "/messages"),
    )
}


def provider_shape(path: str, headers) -> str:
    """Whose error shape to answer a request with when it matched no route: Anthropic's clients send
    `anthropic-version` and post to …/messages; everyone else gets OpenAI's."""
    if "anthropic-version" in headers or path.rstrip("/").endswith("/messages"):
        return ANTHROPIC
    return OPENAI


# status → (OpenAI error type, OpenAI code, Anthropic error type), as each provider names its own refusals.
_ERROR_TYPES = {
    400: ("invalid_request_error", None, "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key", "authentication_error"),
    403: ("invalid_request_error", "upstream_not_allowed", "permission_error"),
    404: ("invalid_request_error", "not_found", "not_found_error"),
    405: ("invalid_request_error", "method_not_allowed", "invalid_request_error"),
    413: ("invalid_request_error", "request_too_large", "request_too_large"),
    429: ("insufficient_quota", "budget_exceeded", "rate_limit_error"),  # ours only for a spent hard budget
    500: ("server_error", None, "api_error"),  # a fallback provider's own failure, in the client's shape
    502: ("server_error", "upstream_unreachable", "api_error"),
    503: ("server_error", "gateway_unavailable", "overloaded_error"),
    504: ("server_error", "upstream_timeout", "timeout_error"),
    529: ("server_error", None, "overloaded_error"),
}


def error_body(provider: str, status: int, message: str, code: str | None = None) -> dict:
    """A refusal in the provider's own error shape, with our message."""
    openai_type, openai_code, anthropic_type = _ERROR_TYPES.get(status, ("invalid_request_error", None, "api_error"))
    if provider == ANTHROPIC:
        return {"type": "error", "error": {"type": anthropic_type, "message": message}}
    return {"error": {"message": message, "type": openai_type, "param": None, "code": code or openai_code}}


def model_problem(route: Route, model: object) -> tuple[int, str, str | None] | None:
    """(status, message, code) when the request's model cannot go to this route's provider; None when it can.

    A model name another provider's family owns (a `claude-…` at /v1/chat/completions) is unknown here: the
    gateway never sends it somewhere that would bill for an error. Names no family claims (fine-tunes, new
    models, local servers) go through and are priced, or shown as unknown_model, like any call.
    """
    if not isinstance(model, str) or not model.strip():
        return 400, "the request has no model: name one in the body's \"model\" field", None
    owner = provider_from_model(model)
    if owner and owner != route.provider:
        hint = f"; call it at {other.path}" if (other := route_for(owner, route.operation)) else ""
        return 404, (f"the model {model!r} is not served at {route.path}: it is a {owner} model{hint}"), "model_not_found"
    return None


def route_for(provider: str, operation: str) -> Route | None:
    return next((r for r in ROUTES.values() if r.provider == provider and r.operation == operation), None)
