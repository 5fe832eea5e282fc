"""Name resolution for webhook deliveries: the host's addresses, which the delivery checks and then
connects to (shared/domain/addresses.py says which are allowed)."""

from __future__ import annotations

import socket

from shared.domain.addresses import AddressRefused


def system_resolver(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise AddressRefused(f"The host {host!r} cannot be resolved ({error.strerror}).") from error
    return list(dict.fromkeys(str(item[4][0]) for item in found))
