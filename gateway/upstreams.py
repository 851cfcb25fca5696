"""Where a call goes: the organization's provider account (or the provider's public API), checked against the
allow-list every time — the providers' public hosts, OBSERVATORY_GATEWAY_ALLOWED_HOSTS, and the hosts the
organization's admins added. Nothing in a request can name a host. Lookups are remembered per process for a few
seconds so a call costs no database round trip.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from gateway import vault
from gateway.models import ProviderAccount, UpstreamHost
from gateway.routes import PUBLIC_BASE_URLS
from observatory.addresses import IPAddress, non_public_kind

CACHE_SECONDS = 10.0
PUBLIC_HOSTS = frozenset(urlsplit(url).hostname for url in PUBLIC_BASE_URLS.values())


class UpstreamRefused(Exception):
    """The configured upstream is not allowed (or not usable); the message says why."""


@dataclass(frozen=True)
class Upstream:
    base_url: str  # no trailing slash
    host: str  # host[:port] as it was allowed
    api_key: str  # the stored provider key ("" when none is stored: the client passes one through)


def host_allowed(url: str, organization_hosts: frozenset[str]) -> bool:
    """Whether `url`'s host is on the allow-list: an entry `host` allows any port of it, `host:port` that port."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    allowed = PUBLIC_HOSTS | frozenset(settings.GATEWAY_ALLOWED_HOSTS) | organization_hosts
    return host in allowed or f"{host}:{port}" in allowed


_networks: dict[tuple[str, ...], tuple] = {}


def private_networks() -> tuple:
    """OBSERVATORY_GATEWAY_PRIVATE_NETWORKS as networks (parsed once per value)."""
    entries = tuple(settings.GATEWAY_PRIVATE_NETWORKS)
    networks = _networks.get(entries)
    if networks is None:
        networks = _networks[entries] = tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    return networks


def address_refusal(host: str, port: int, ip: IPAddress) -> str | None:
    """Why the gateway may not connect to `ip`, an address `host` resolved to (None: it may). The providers' public
    APIs and the operator's OBSERVATORY_GATEWAY_ALLOWED_HOSTS may be anywhere; a host an organization admin added
    must resolve to public addresses only, or to one inside OBSERVATORY_GATEWAY_PRIVATE_NETWORKS — so no
    organization can point the gateway at the server's own network, its cloud metadata service or localhost."""
    name = host.strip("[]").lower()
    trusted = PUBLIC_HOSTS | frozenset(settings.GATEWAY_ALLOWED_HOSTS)
    if name in trusted or f"{name}:{port}" in trusted:
        return None
    kind = non_public_kind(ip)
    if kind is None or any(ip.version == network.version and ip in network for network in private_networks()):
        return None
    return (f"{name} resolves to {ip}, {kind}; the gateway calls an organization's hosts on public addresses only "
            "(an operator allows internal networks with OBSERVATORY_GATEWAY_PRIVATE_NETWORKS)")


def normalize_host(entry: str) -> str:
    """`host` or `host:port`, lowercase; raises ValueError for anything else (a URL, a path, a user)."""
    value = entry.strip().lower()
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{entry!r} has an invalid port") from None
    if not parts.hostname or parts.path or parts.query or parts.username or parts.password or "/" in value:
        raise ValueError(f"{entry!r} is not a host name: give host or host:port, e.g. llm.internal:8000")
    return parts.hostname if port is None else f"{parts.hostname}:{port}"


def resolve(organization_id: int, provider: str) -> Upstream:
    """The organization's upstream for `provider` from the database (see `cached`)."""
    hosts = frozenset(UpstreamHost.objects.filter(organization_id=organization_id).values_list("host", flat=True))
    account = ProviderAccount.objects.filter(organization_id=organization_id, provider=provider).first()
    base_url = ((account.base_url if account else "") or PUBLIC_BASE_URLS[provider]).rstrip("/")
    if not host_allowed(base_url, hosts):
        raise UpstreamRefused(f"the {provider} upstream {urlsplit(base_url).netloc!r} is not on the gateway's "
                              "allow-list; an organization admin adds it under Settings → Gateway")
    api_key = vault.decrypt(account.encrypted_api_key) if account and account.encrypted_api_key else ""
    return Upstream(base_url, urlsplit(base_url).netloc, api_key)


class UpstreamCache:
    """(organization, provider) → Upstream or the refusal, for CACHE_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str], tuple[float, Upstream | UpstreamRefused]] = {}

    def peek(self, organization_id: int, provider: str) -> Upstream | UpstreamRefused | None:
        hit = self._entries.get((organization_id, provider))
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        return None

    def load(self, organization_id: int, provider: str) -> Upstream | UpstreamRefused:
        try:
            found: Upstream | UpstreamRefused = resolve(organization_id, provider)
        except (UpstreamRefused, vault.VaultError) as exc:
            found = UpstreamRefused(str(exc))
        with self._lock:
            self._entries[(organization_id, provider)] = (time.monotonic(), found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


upstream_cache = UpstreamCache()
