"""Where a webhook may point: HTTPS to public addresses in production; development mode also allows plain
HTTP and loopback (a receiver on the developer's machine), and nothing else that is not public."""

from __future__ import annotations

import pytest

from shared.domain.addresses import AddressRefused, checked_addresses, endpoint_of, refusal
from tests.support.memory import fake_resolver


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.0.10", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("0.0.0.0", "a private address"),  # noqa: S104 - an address refused, nothing binds to it
        ("100.64.0.1", "a reserved address"),
        ("224.0.0.1", "a reserved address"),
        ("240.0.0.1", "a private address"),
    ],
)
def test_only_public_addresses_may_be_reached_in_production(address: str, reason: str | None) -> None:
    assert refusal(address, development_mode=False) == reason


def test_development_mode_allows_loopback_and_nothing_else_that_is_not_public() -> None:
    assert refusal("127.0.0.1", development_mode=True) is None
    assert refusal("::1", development_mode=True) is None
    assert refusal("10.0.0.1", development_mode=True) == "a private address"
    assert refusal("169.254.169.254", development_mode=True) == "a link-local address"


def test_a_webhook_url_is_https_without_credentials() -> None:
    endpoint = endpoint_of("https://hooks.example.com:8443/in?team=ops", development_mode=False)
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.target) == (
        "https",
        "hooks.example.com",
        8443,
        "/in?team=ops",
    )
    assert endpoint.host_header == "hooks.example.com:8443"
    assert endpoint_of("https://hooks.example.com", development_mode=False).target == "/"
    with pytest.raises(AddressRefused, match="must be https"):
        endpoint_of("http://hooks.example.com/in", development_mode=False)
    with pytest.raises(AddressRefused, match="credentials"):
        endpoint_of("https://user:pw@hooks.example.com/in", development_mode=False)
    with pytest.raises(AddressRefused):
        endpoint_of("ftp://hooks.example.com/in", development_mode=True)
    assert endpoint_of("http://127.0.0.1:9000/in", development_mode=True).port == 9000


def test_a_host_is_refused_when_any_of_its_addresses_is_not_allowed() -> None:
    def check(host: str, development_mode: bool = False) -> list[str]:
        return checked_addresses(endpoint_of(f"https://{host}/", development_mode=development_mode), fake_resolver,
                                 development_mode=development_mode)  # fmt: skip

    assert check("hooks.example.com") == ["93.184.215.14"]
    assert check("six.example.com") == ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    with pytest.raises(AddressRefused, match=r"192\.168\.1\.5, a private address"):
        check("mixed.example.com")
    with pytest.raises(AddressRefused, match="link-local"):
        check("metadata.example.com")
    with pytest.raises(AddressRefused, match="loopback"):
        check("localhost")
    assert check("localhost", development_mode=True) == ["127.0.0.1"]
    with pytest.raises(AddressRefused, match="cannot be resolved"):
        check("nowhere.example.com")
