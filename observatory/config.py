"""Reads Observatory's configuration from the environment, with clear errors for bad values.

Kept free of Django imports so the launcher, settings and tests share one parser.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_SECRET_KEY = "insecure-local-only-observatory-key-change-me"  # noqa: S105 (a placeholder, refused in production)


SUPPORTED_BROKERS = {"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem", "memory", "sqla+postgresql"}


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Config:
    production: bool
    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    data_dir: Path
    database: dict
    embedded_database: bool
    broker_url: str
    embedded_broker: bool
    site_url: str
    email_host: str
    email_port: int
    email_user: str
    email_password: str
    email_use_tls: bool
    default_from_email: str
    slack_webhook_url: str
    retention_days: int
    ingest_max_body_bytes: int
    ingest_max_decompressed_bytes: int
    webhook_allow_private: bool = False
    ssl_redirect: bool = False
    hsts_seconds: int = 0
    trusted_proxy_hops: int = 0
    login_failure_limit: int = 10
    login_lockout_minutes: int = 15
    ingest_rate_per_key: int = 50_000
    ingest_burst_per_key: int = 250_000
    spool_max_bytes: int = 1024**3
    ingest_batch_ms: int = 100
    gateway_allowed_hosts: list[str] = field(default_factory=list)
    gateway_private_networks: list[str] = field(default_factory=list)
    gateway_secret_key: str = ""
    gateway_max_body_bytes: int = 32 * 1024 * 1024
    redis_url: str = ""  # REDIS_URL: hard-budget counters shared there (else in PostgreSQL)
    gateway_redis_url: str = ""  # the gateway's shared response cache; empty: PostgreSQL
    gateway_url: str = "http://127.0.0.1:4000"  # where clients reach the gateway (shown on Settings → Gateway)
    extra: dict = field(default_factory=dict)


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use true/false, 1/0, yes/no or on/off.")


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is too small: it must be at least {minimum}.")
    return value


def _list(env: dict[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _networks(env: dict[str, str], name: str) -> list[str]:
    """Comma-separated networks (10.0.0.0/8, 192.168.1.5, fd00::/8) as their canonical spelling."""
    networks = []
    for entry in _list(env, name, []):
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}: {entry!r} is not a network; give CIDR blocks such as 10.0.0.0/8") from None
    return networks


def default_data_dir(env: dict[str, str]) -> Path:
    """Where local state lives (embedded PostgreSQL, broker queue): reused across runs."""
    if env.get("OBSERVATORY_HOME"):
        return Path(env["OBSERVATORY_HOME"]).expanduser().absolute()
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return (Path(base).expanduser() / "observatory").absolute()


def parse_database_url(url: str) -> dict:
    """Turn postgresql://user:pass@host:port/name?sslmode=... into Django's DATABASES entry."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL is malformed ({exc}); expected postgresql://user:password@host:5432/dbname") from None
    if parts.scheme not in {"postgres", "postgresql", "pgsql", "postgresql+psycopg"}:
        raise ConfigError(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported: Observatory needs PostgreSQL "
            "(postgresql://user:password@host:5432/dbname)."
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ConfigError("DATABASE_URL has no database name: add it after the host, e.g. postgresql://localhost/observatory")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = unquote(parts.hostname or "") or query.pop("host", "")
    options = {key: value for key, value in query.items() if key != "host"}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def embedded_socket_dir(pgdata: Path) -> str:
    """The socket directory of the embedded server: read from postmaster.pid when it runs."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        if len(lines) > 4 and lines[4].strip():
            return lines[4].strip()
    except OSError:
        pass
    return str(pgdata)


def load_config(env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    production = env.get("DJANGO_ENV", env.get("OBSERVATORY_ENV", "")).strip().lower() in {"production", "prod"}
    debug = _bool(env, "DEBUG", False)  # `observatory up` and every deploy path run without it; runserver users opt in
    secret_key = env.get("SECRET_KEY", "") or DEFAULT_SECRET_KEY
    if production and secret_key == DEFAULT_SECRET_KEY:
        raise ConfigError("SECRET_KEY must be set in production (DJANGO_ENV=production): use a long random value.")
    if production and len(secret_key) < 32:
        raise ConfigError("SECRET_KEY is too short for production: use at least 32 random characters.")
    data_dir = default_data_dir(env)

    database_url = env.get("DATABASE_URL", "").strip()
    if database_url:
        database = parse_database_url(database_url)
        embedded_database = False
    else:
        pgdata = data_dir / "pgdata"
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": env.get("OBSERVATORY_DB_NAME", "observatory"),
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": embedded_socket_dir(pgdata),
            "PORT": "",
            "OPTIONS": {},
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
        embedded_database = True

    broker_url = env.get("CELERY_BROKER_URL", "").strip()
    embedded_broker = not broker_url
    if embedded_broker:
        broker_url = "filesystem://"
    elif broker_url.split("://", 1)[0] not in SUPPORTED_BROKERS:
        raise ConfigError(
            f"CELERY_BROKER_URL={broker_url!r} is not a supported broker URL: "
            "use redis://host:6379/0 or amqp://user:pass@host:5672//"
        )

    port = env.get("OBSERVATORY_PORT", "8000")
    site_url = env.get("SITE_URL", f"http://127.0.0.1:{port}").rstrip("/")
    if not site_url.startswith(("http://", "https://")):
        raise ConfigError(f"SITE_URL={site_url!r} must start with http:// or https://")
    allowed_hosts = _list(env, "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if not production else [])
    if production and not allowed_hosts:
        raise ConfigError("ALLOWED_HOSTS must be set in production, e.g. ALLOWED_HOSTS=observatory.example.com")

    return Config(
        production=production,
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=allowed_hosts,
        csrf_trusted_origins=_list(env, "CSRF_TRUSTED_ORIGINS", []),
        data_dir=data_dir,
        database=database,
        embedded_database=embedded_database,
        broker_url=broker_url,
        embedded_broker=embedded_broker,
        site_url=site_url,
        email_host=env.get("EMAIL_HOST", "localhost"),
        email_port=_int(env, "EMAIL_PORT", 25, minimum=1),
        email_user=env.get("EMAIL_HOST_USER", ""),
        email_password=env.get("EMAIL_HOST_PASSWORD", ""),
        email_use_tls=_bool(env, "EMAIL_USE_TLS", False),
        default_from_email=env.get("DEFAULT_FROM_EMAIL", "observatory@localhost"),
        slack_webhook_url=env.get("SLACK_WEBHOOK_URL", ""),
        retention_days=_int(env, "OBSERVATORY_RETENTION_DAYS", 400, minimum=1),
        ingest_max_body_bytes=_int(env, "OBSERVATORY_INGEST_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024),
        ingest_max_decompressed_bytes=_int(env, "OBSERVATORY_INGEST_MAX_DECOMPRESSED_BYTES", 64 * 1024 * 1024, minimum=1024),
        webhook_allow_private=_bool(env, "OBSERVATORY_WEBHOOK_ALLOW_PRIVATE", False),
        ssl_redirect=_bool(env, "OBSERVATORY_SSL_REDIRECT", production),
        hsts_seconds=_int(env, "OBSERVATORY_HSTS_SECONDS", 31_536_000 if production else 0),
        trusted_proxy_hops=_int(env, "OBSERVATORY_TRUSTED_PROXY_HOPS", 0),
        login_failure_limit=_int(env, "OBSERVATORY_LOGIN_FAILURE_LIMIT", 10, minimum=1),
        login_lockout_minutes=_int(env, "OBSERVATORY_LOGIN_LOCKOUT_MINUTES", 15, minimum=1),
        ingest_rate_per_key=_int(env, "OBSERVATORY_INGEST_RATE_PER_KEY", 50_000),
        ingest_burst_per_key=_int(env, "OBSERVATORY_INGEST_BURST_PER_KEY", 250_000),
        spool_max_bytes=_int(env, "OBSERVATORY_SPOOL_MAX_BYTES", 1024**3, minimum=1024 * 1024),
        ingest_batch_ms=_int(env, "OBSERVATORY_INGEST_BATCH_MS", 100),
        gateway_allowed_hosts=[host.lower() for host in _list(env, "OBSERVATORY_GATEWAY_ALLOWED_HOSTS", [])],
        gateway_private_networks=_networks(env, "OBSERVATORY_GATEWAY_PRIVATE_NETWORKS"),
        gateway_secret_key=_gateway_secret_key(env),
        gateway_max_body_bytes=_int(env, "OBSERVATORY_GATEWAY_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1024),
        redis_url=env.get("REDIS_URL", "").strip(),
        gateway_redis_url=_redis_url(env, "OBSERVATORY_GATEWAY_REDIS_URL") or env.get("REDIS_URL", "").strip(),
        gateway_url=_gateway_url(env, site_url),
    )


def _redis_url(env: dict[str, str], name: str) -> str:
    url = env.get(name, "").strip()
    if url and url.split("://", 1)[0] not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{name}={url!r} is not a Redis URL: use redis://host:6379/0 (or leave it empty for PostgreSQL)")
    return url


def _gateway_url(env: dict[str, str], site_url: str) -> str:
    """Where clients reach the gateway: OBSERVATORY_GATEWAY_URL (e.g. behind a proxy), else SITE_URL's host on the
    gateway's port, over plain HTTP as the gateway serves it (SITE_URL https://obs.example.com → http://obs.example.com:4000)."""
    url = env.get("OBSERVATORY_GATEWAY_URL", "").strip().rstrip("/")
    if url:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"OBSERVATORY_GATEWAY_URL={url!r} must start with http:// or https://")
        return url
    host = urlsplit(site_url).hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"http://{host}:{_int(env, 'OBSERVATORY_GATEWAY_PORT', 4000, minimum=1)}"


def _gateway_secret_key(env: dict[str, str]) -> str:
    """The key provider credentials are encrypted with (gateway.vault); empty: a key file in the data directory."""
    value = env.get("OBSERVATORY_GATEWAY_SECRET_KEY", "").strip()
    if value and len(value) < 32:
        raise ConfigError("OBSERVATORY_GATEWAY_SECRET_KEY is too short: use at least 32 random characters "
                          "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))').")
    return value
