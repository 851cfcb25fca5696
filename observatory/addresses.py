"""What kind of network address a host is: the checks that keep the server from calling its own internal network
when a user names a host (alert webhooks in billing.alerts.webhook_guard, the gateway's upstreams in
gateway.upstreams). Pure functions of the address or name; resolving is the caller's.
"""

from __future__ import annotations

import ipaddress
import socket

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# special-use or private-use domains: names under them can only be local (RFC 6761, 6762, 8375; ICANN .internal)
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), 6to4, NAT64."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):  # ::/128 and ::1 are themselves
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_public_kind(ip: IPAddress) -> str | None:
    """Why an address is not a public one ("a loopback address", …), or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return non_public_kind(embedded)
    if ip in METADATA_ADDRESSES:
        return "the cloud metadata service's address"
    for test, kind in (("is_loopback", "a loopback"), ("is_unspecified", "an unspecified"),
                       ("is_link_local", "a link-local"), ("is_multicast", "a multicast"), ("is_private", "a private"),
                       ("is_reserved", "a reserved")):
        if getattr(ip, test):
            return f"{kind} address"
    if not ip.is_global:
        return "a non-public address"
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address a host spells directly: 10.0.0.1, [::1], and the legacy IPv4 forms resolvers accept
    (2130706433, 0x7f.1, 127.1). None for a host name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.replace("%25", "%"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_local_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES)
