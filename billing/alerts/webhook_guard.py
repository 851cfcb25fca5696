"""Where alert webhooks (Slack and the signed generic webhook) may be sent: public http(s) addresses only.

Two checks, so that a budget or rule cannot make the server call its own internal network (SSRF):

- on save (the budget and rule forms, the REST serializers), `validate_webhook_url` refuses what the URL
  alone shows: a scheme other than http or https, a user name or password in it, `localhost` and other
  local-only names, and literal loopback, private, link-local (169.254.169.254, the cloud metadata service),
  multicast or otherwise non-public IP addresses, in any spelling (2130706433, 0x7f.1, ::ffff:127.0.0.1);
- at delivery, `post` checks the URL again, resolves its host name, refuses it if *any* of the addresses is
  not public, and connects only to an address it verified (the request is pinned to it: the Host header and
  the TLS server name stay the host name's), so a DNS answer that changes between the check and the
  connection cannot send it elsewhere. Redirects are never followed.

OBSERVATORY_WEBHOOK_ALLOW_PRIVATE=true (settings.WEBHOOK_ALLOW_PRIVATE) lifts the address checks for
installations that deliberately post to an internal service; the scheme and user-name checks stay.
When an HTTP proxy from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, minus NO_PROXY) applies, the
addresses are still checked locally but the request goes to the host name through the proxy, which resolves
it again itself.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError

from observatory.addresses import IPAddress, is_local_name, literal_ip, non_public_kind

ALLOWED_SCHEMES = ("http", "https")
MAX_ADDRESSES_TRIED = 3
ALLOW_HINT = "an operator can allow internal addresses with OBSERVATORY_WEBHOOK_ALLOW_PRIVATE=true"

class UnsafeWebhookUrl(ValueError):
    """A webhook URL Observatory refuses to call; the message says why (and never contains the URL's path,
    which for Slack is the secret)."""


def private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE", False))


def _parse(url: str) -> httpx.URL:
    """The URL if its form is acceptable (scheme, no credentials, a host); else UnsafeWebhookUrl."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeWebhookUrl(f"not a valid URL ({exc}).") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        scheme = f"{parsed.scheme}://" if parsed.scheme else "no scheme"
        raise UnsafeWebhookUrl(f"use an http:// or https:// URL, not {scheme}.")
    if parsed.userinfo:
        raise UnsafeWebhookUrl("remove the user name and password from the URL: webhook URLs may not carry credentials.")
    if not parsed.host:
        raise UnsafeWebhookUrl("the URL has no host.")
    return parsed


def check_url(url: str) -> httpx.URL:
    """What can be checked without DNS; raises UnsafeWebhookUrl. Returns the parsed URL."""
    parsed = _parse(url)
    if private_allowed():
        return parsed
    host = parsed.host
    ip = literal_ip(host)
    if ip is not None:
        kind = non_public_kind(ip)
        if kind:
            raise UnsafeWebhookUrl(f"{host} is {kind}: alerts go only to public internet addresses ({ALLOW_HINT}).")
    elif is_local_name(host):
        raise UnsafeWebhookUrl(f"“{host}” is a local host name: alerts go only to public internet addresses "
                               f"({ALLOW_HINT}).")
    return parsed


def validate_webhook_url(value: str) -> None:
    """Django validator for the Slack and webhook URL fields of the forms and REST serializers."""
    if not value:
        return
    try:
        check_url(value)
    except UnsafeWebhookUrl as exc:
        raise ValidationError(str(exc), code="unsafe_webhook_url") from None


def _default_port(parsed: httpx.URL) -> int:
    return parsed.port or (443 if parsed.scheme == "https" else 80)


def resolve_public(parsed: httpx.URL) -> list[IPAddress]:
    """Every address the URL's host resolves to, in the resolver's order, after checking that all are public.

    Raises UnsafeWebhookUrl when any is not (a name with one private address among public ones is refused too:
    which one a client picks is not ours to decide), httpx.ConnectError when the name does not resolve."""
    host = parsed.raw_host.decode("ascii")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), _default_port(parsed), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"could not resolve {host}: {getattr(exc, 'strerror', None) or exc}") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        kind = non_public_kind(ip)
        if kind:
            raise UnsafeWebhookUrl(f"refused: {host} resolves to {ip}, {kind}; alerts go only to public internet "
                                   f"addresses ({ALLOW_HINT}).")
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise httpx.ConnectError(f"could not resolve {host}: no address")
    return addresses


def _proxied(parsed: httpx.URL) -> bool:
    """Whether an environment proxy would carry this request (as httpx reads it: urllib's getproxies)."""
    proxies = urllib.request.getproxies()
    if not (proxies.get(parsed.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parsed.host)


@dataclass(frozen=True)
class Attempt:
    """One way to send the request: the original URL, or the URL with its host replaced by a verified address
    (then sent directly, never through a proxy, with the host name in the Host header and the TLS server name)."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict
    pinned: bool

    def client(self, timeout: float) -> httpx.Client:
        # an explicit transport keeps httpx from routing the pinned request through an environment proxy, while
        # still honouring SSL_CERT_FILE / SSL_CERT_DIR
        transport = httpx.HTTPTransport(trust_env=True) if self.pinned else None
        return httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)


def plan(url: str) -> list[Attempt]:
    """The connections to try, in order; raises UnsafeWebhookUrl or httpx.ConnectError (name not resolved)."""
    parsed = check_url(url)
    if private_allowed():
        return [Attempt(parsed, {}, {}, pinned=False)]
    addresses = resolve_public(parsed)
    if _proxied(parsed):
        return [Attempt(parsed, {}, {}, pinned=False)]
    host = parsed.raw_host.decode("ascii")
    host_header = parsed.netloc.decode("ascii")  # host[:port], as httpx would send it
    return [Attempt(parsed.copy_with(host=str(ip)), {"Host": host_header}, {"sni_hostname": host}, pinned=True)
            for ip in addresses[:MAX_ADDRESSES_TRIED]]


def post(url: str, content: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
    """POST to a webhook URL after the delivery-time checks, without following redirects.

    Tries the verified addresses in order while connecting fails (as socket.create_connection would); raises
    UnsafeWebhookUrl for a refused URL and httpx errors for the outside world's failures."""
    last_error: httpx.TransportError = httpx.ConnectError("no address to connect to")
    for attempt in plan(url):
        with attempt.client(timeout) as client:
            try:
                return client.post(attempt.url, content=content, headers=headers | attempt.headers,
                                   extensions=attempt.extensions)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = exc
    raise last_error
