"""Where a webhook may point: HTTPS, and a host whose every address is public. Checked when a webhook is
registered and again before each delivery (a name can be pointed elsewhere in between), and the delivery
connects to the address that was checked. Development mode also allows plain HTTP and loopback
addresses, for a receiver on the developer's machine."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]  # host, port -> its addresses


class AddressRefused(Exception):
    """The URL may not be used as a webhook; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    target: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def endpoint_of(url: str, *, development_mode: bool) -> Endpoint:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise AddressRefused(f"{url!r} is not a URL.") from error
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if development_mode else ("https",)
    if scheme not in allowed:
        raise AddressRefused("A webhook URL must be https." if not development_mode else "A webhook URL is http(s).")
    if not parts.hostname:
        raise AddressRefused(f"{url!r} names no host.")
    if parts.username or parts.password:
        raise AddressRefused("A webhook URL must not hold credentials; the deliveries are signed with its secret.")
    if parts.fragment:
        raise AddressRefused("A webhook URL has no fragment (#…).")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(scheme, parts.hostname, port or (443 if scheme == "https" else 80), target)


def refusal(address: str, *, development_mode: bool) -> str | None:
    """Why the address may not be reached, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if development_mode else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def checked_addresses(endpoint: Endpoint, resolver: Resolver, *, development_mode: bool) -> list[str]:
    """The host's addresses, every one of them allowed (one that is not refuses the whole host)."""
    addresses = resolver(endpoint.host, endpoint.port)
    if not addresses:
        raise AddressRefused(f"The host {endpoint.host!r} has no address.")
    for address in addresses:
        reason = refusal(address, development_mode=development_mode)
        if reason:
            raise AddressRefused(f"The host {endpoint.host!r} resolves to {address}, {reason}; webhooks may not.")
    return addresses
