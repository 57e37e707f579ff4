"""Webhook targets: one parser (httpx's, the one that sends) decides the host; addresses embedding an
IPv4 address are judged by it; passwords are never shown back."""

from __future__ import annotations

import ipaddress

import pytest

from gradeflow.notify.webhooks import Refused, judge, networks, parse_target, redacted

NONE = networks([])


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1:18997/",  # octal
        "http://01.1.1.1/",
        "http://127.0.0.01/",
        "http://0x7f.0.0.1/",  # hex
        "http://0x7f000001/",
        "http://0x/",
        "http://127.1/",  # short
        "http://1.2.3/",
        "http://2130706433/",  # integer
        "http://127.0.0.1./",  # a trailing dot
        "http://1.2.3.4.5/",
        "http://%31%32%37.0.0.1/",
        "http://ex%20ample.org/",
        "http://a..b/",
        "http://[fe80::1%25eth0]/",
        "http://[::1]:99999/",
        "http://[::1]:0/",
        "ftp://example.org/",
        "http:///path",
        "not a url",
    ],
)
def test_unusable_or_ambiguous_urls_are_refused(url: str) -> None:
    with pytest.raises(Refused):
        parse_target(url)


@pytest.mark.parametrize(
    ("url", "host", "port", "literal"),
    [
        ("https://hooks.example.org/x", "hooks.example.org", 443, None),
        ("http://Hooks.Example.ORG.:8080/x", "hooks.example.org.", 8080, None),
        ("https://bücher.example/x", "xn--bcher-kva.example", 443, None),
        ("http://0177.example.org/", "0177.example.org", 80, None),  # a name: resolved, then judged
        ("http://192.0.2.10/", "192.0.2.10", 80, "192.0.2.10"),
        ("https://user:pw@[2001:db8::1]:8443/", "2001:db8::1", 8443, "2001:db8::1"),
    ],
)
def test_the_host_connected_to(url: str, host: str, port: int, literal: str | None) -> None:
    target = parse_target(url)
    assert (target.host, target.port) == (host, port)
    assert target.literal == (None if literal is None else ipaddress.ip_address(literal))


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::10.0.0.1",  # IPv4-compatible
        "::127.0.0.1",
        "64:ff9b::169.254.169.254",  # NAT64
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
        "2001:0:a00:1::1",  # Teredo, server 10.0.0.1
        "10.1.2.3",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104  (an address judged, not bound)
        "224.0.0.1",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
    ],
)
def test_private_addresses_are_refused_also_when_embedded(address: str) -> None:
    with pytest.raises(Refused):
        judge("h", ipaddress.ip_address(address), NONE)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:2800:220:1::1",
        "::ffff:93.184.216.34",
        "64:ff9b::93.184.216.34",
        "2002:5db8:d822::1",
        "2001:0:5db8:d822::a2ff:fffe",  # Teredo: server 93.184.216.34, client 93.184.0.1
    ],
)
def test_public_addresses_pass(address: str) -> None:
    judge("h", ipaddress.ip_address(address), NONE)


def test_allowed_networks_are_judged_by_the_embedded_address() -> None:
    allowed = networks(["127.0.0.0/8", "::1/128"])
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "::127.0.0.1"):
        judge("h", ipaddress.ip_address(address), allowed)
    with pytest.raises(Refused):
        judge("h", ipaddress.ip_address("::ffff:10.0.0.1"), allowed)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:s3cret@example.org/a?b=1", "https://user:***@example.org/a?b=1"),
        ("https://user:@example.org", "https://user:***@example.org"),
        ("https://tok3n@example.org:8443/x", "https://***@example.org:8443/x"),
        ("https://u:p@ss@example.org/x@y", "https://u:***@example.org/x@y"),  # the last @ ends it
        ("https://example.org/a@b", "https://example.org/a@b"),
        ("https://example.org/?next=http://u:p@x", "https://example.org/?next=http://u:p@x"),
        ("not a url", "not a url"),
    ],
)
def test_passwords_are_not_shown(url: str, shown: str) -> None:
    assert redacted(url) == shown
