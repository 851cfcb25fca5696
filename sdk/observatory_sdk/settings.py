"""SDK settings: explicit `init()` arguments win, then OBSERVATORY_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote

from .failures import log_once
from .version import __version__

_TRUE = {"1", "true", "yes", "on"}
DEFAULT_MAX_QUEUE_SIZE = 4096
DEFAULT_MAX_CONTENT_CHARS = 16_384
COMPRESSIONS = ("none", "gzip")


@dataclass(frozen=True)
class Settings:
    endpoint: str | None
    api_key: str | None
    team: str | None
    product: str | None
    environment: str | None
    feature: str | None
    capture_content: bool
    service_name: str | None
    max_queue_size: int
    disabled: bool
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS
    compression: str = "none"

    @property
    def traces_url(self) -> str | None:
        """The OTLP/HTTP traces URL: the endpoint is a base URL, like OTEL_EXPORTER_OTLP_ENDPOINT."""
        if not self.endpoint:
            return None
        base = self.endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"

    @cached_property
    def default_attribution(self) -> dict[str, str]:
        values = {
            "team": self.team,
            "product": self.product,
            "feature": self.feature,
            "environment": self.environment,
        }
        return {key: value for key, value in values.items() if value}


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _flag(explicit: bool | None, name: str) -> bool:
    if explicit is not None:
        return explicit
    return (_env(name) or "").lower() in _TRUE


def _count(explicit: int | None, name: str, default: int) -> int:
    if explicit is not None:
        return max(1, explicit)
    try:
        return max(1, int(_env(name) or default))
    except ValueError:
        log_once(f"bad-{name}", "observatory_sdk: %s is not a number; using %d", name, default)
        return default


def _compression(explicit: str | None) -> str:
    """The export's Content-Encoding: `none` unless asked (as OpenTelemetry's OTLP exporters, whose variables are
    read too): gzip cuts the bytes sent about 16-fold and costs about 2 µs of CPU per call on each side."""
    name = "OBSERVATORY_EXPORT_COMPRESSION"
    value = explicit or _env(name) or _env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") or _env("OTEL_EXPORTER_OTLP_COMPRESSION")
    value = (value or "none").lower()
    if value not in COMPRESSIONS:
        log_once(f"bad-{name}", "observatory_sdk: compression %r is not one of none, gzip; sending uncompressed", value)
        return "none"
    return value


def resource_attributes(service_name: str | None) -> dict[str, Any]:
    """The OTLP resource of our spans, as the OpenTelemetry SDK's `Resource.create` would make it
    (OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME, then `service_name` win in turn), naming
    this SDK as the telemetry SDK. Made once per init(), so `uuid` is imported here, not with the SDK."""
    import uuid

    attributes: dict[str, Any] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "observatory_sdk",
        "telemetry.sdk.version": __version__,
        "service.instance.id": str(uuid.uuid4()),
    }
    for pair in (_env("OTEL_RESOURCE_ATTRIBUTES") or "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    name = service_name or _env("OTEL_SERVICE_NAME") or attributes.get("service.name")
    attributes["service.name"] = name or "unknown_service:python"
    return attributes


def load_settings(
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    team: str | None = None,
    product: str | None = None,
    environment: str | None = None,
    feature: str | None = None,
    capture_content: bool | None = None,
    service_name: str | None = None,
    max_queue_size: int | None = None,
    disabled: bool | None = None,
    compression: str | None = None,
) -> Settings:
    return Settings(
        endpoint=endpoint or _env("OBSERVATORY_ENDPOINT"),
        api_key=api_key or _env("OBSERVATORY_API_KEY"),
        team=team or _env("OBSERVATORY_TEAM"),
        product=product or _env("OBSERVATORY_PRODUCT"),
        environment=environment or _env("OBSERVATORY_ENVIRONMENT"),
        feature=feature or _env("OBSERVATORY_FEATURE"),
        capture_content=_flag(capture_content, "OBSERVATORY_CAPTURE_CONTENT"),
        service_name=service_name or _env("OBSERVATORY_SERVICE_NAME"),
        max_queue_size=_count(max_queue_size, "OBSERVATORY_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE),
        disabled=_flag(disabled, "OBSERVATORY_DISABLED"),
        compression=_compression(compression),
    )
