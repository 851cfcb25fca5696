"""Who a call belongs to: team, product, feature and environment, end user, session and service name."""

from __future__ import annotations

from ingest.mappers.normalize.values import first_label, label
from ingest.records import AttrValue, CallFields, SpanView

USER_KEYS = (
    "user.id",
    "enduser.id",
    "gen_ai.user",
    "gen_ai.request.user",
    "llm.user",  # OpenLLMetry before 0.30, LiteLLM: the OpenAI `user` request field
    "traceloop.association.properties.user_id",
    "langfuse.user.id",
)
SESSION_KEYS = (
    "session.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",
    "langfuse.session.id",
)
ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")


_RESOURCE_CACHE: dict[int, tuple[dict[str, AttrValue], tuple[str, ...]]] = {}
_RESOURCE_CACHE_SIZE = 4096


def _resource_attribution(resource: dict[str, AttrValue]) -> tuple[str, ...]:
    """(team, product, feature, environment, deployment environment, service name) of a resource.

    Spans of one ResourceSpans share the resource dict, so this is computed once per resource.
    """
    entry = _RESOURCE_CACHE.get(id(resource))
    if entry is not None and entry[0] is resource:
        return entry[1]
    values = (
        label(resource.get("observatory.team")),
        label(resource.get("observatory.product")),
        label(resource.get("observatory.feature")),
        label(resource.get("observatory.environment")),
        first_label(resource, ENVIRONMENT_KEYS),
        label(resource.get("service.name")),
    )
    if len(_RESOURCE_CACHE) >= _RESOURCE_CACHE_SIZE:
        _RESOURCE_CACHE.clear()
    _RESOURCE_CACHE[id(resource)] = (resource, values)
    return values


def apply_attribution(call: CallFields, span: SpanView, fallback: dict[str, str] | None = None) -> None:
    """team/product/feature/environment, end user, session and service name.

    Order: observatory.* span attributes, observatory.* resource attributes, then what the
    library's own context mechanism carried (`fallback`), then (environment only)
    deployment.environment(.name) on the span or resource.
    """
    attrs = span.attributes
    get = attrs.get
    team, product, feature, environment, deployment, service = _resource_attribution(span.resource)
    if (value := get("observatory.team")) is not None:
        team = label(value) or team
    if (value := get("observatory.product")) is not None:
        product = label(value) or product
    if (value := get("observatory.feature")) is not None:
        feature = label(value) or feature
    if (value := get("observatory.environment")) is not None:
        environment = label(value) or environment
    end_user = first_label(attrs, USER_KEYS)
    session = first_label(attrs, SESSION_KEYS)
    if fallback:
        team = team or fallback.get("team", "")
        product = product or fallback.get("product", "")
        feature = feature or fallback.get("feature", "")
        environment = environment or fallback.get("environment", "")
        end_user = end_user or fallback.get("user", "")
        session = session or fallback.get("session", "")
    call.team = team
    call.product = product
    call.feature = feature
    call.environment = environment or first_label(attrs, ENVIRONMENT_KEYS) or deployment
    call.end_user = end_user
    call.session = session
    call.service_name = service
