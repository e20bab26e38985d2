"""The webhook URL checks: every spelling of an address a client would connect to, every
class of non-public address, and the resolver's answers, all without the network."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from krypton.adapters.webhooks.ssrf import (
    SystemResolver,
    Target,
    UnsafeUrl,
    address_class,
    check_address,
    check_url,
    parse_url,
    resolve_target,
)


class StubResolver:
    """Answers from a table; each name's answers are used in turn, the last one repeated."""

    def __init__(self, answers: dict[str, Sequence[list[str]]]) -> None:
        self._answers = answers
        self.calls: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self._answers:
            raise UnsafeUrl(f"the webhook URL's host {host} could not be resolved: unknown name")
        rounds = self._answers[host]
        return list(rounds[min(len(self.calls_for(host)) - 1, len(rounds) - 1)])

    def calls_for(self, host: str) -> list[tuple[str, int]]:
        return [call for call in self.calls if call[0] == host]


NAMES: dict[str, Sequence[list[str]]] = {
    "hooks.example.com": [["93.184.215.14"]],
    "v6.example.com": [["2606:4700::1111", "93.184.215.14"]],
    "xn--bcher-kva.example": [["93.184.215.14"]],
    "internal.example.com": [["10.0.0.5"]],
    "metadata.example.com": [["169.254.169.254"]],
    "mixed.example.com": [["93.184.215.14", "192.168.1.10"]],
    "mapped.example.com": [["::ffff:10.1.2.3"]],
    "localhost": [["127.0.0.1", "::1"]],
    "garbage.example.com": [["not-an-ip"]],
    "empty.example.com": [[]],
}


@dataclass(frozen=True)
class Row:
    url: str
    expect: str  # the normalised URL when accepted, else a phrase of the refusal
    https: bool = True  # require_https
    loopback: bool = False  # allow_loopback

    @property
    def refused(self) -> bool:
        return "://" not in self.expect


ROWS = [
    # Public addresses and names that pass.
    Row("https://8.8.8.8/hook", "https://8.8.8.8/hook"),
    Row("https://8.8.8.8:443/hook?a=1&b=2", "https://8.8.8.8/hook?a=1&b=2"),
    Row("https://[2606:4700::1111]:8443/x", "https://[2606:4700::1111]:8443/x"),
    Row("HTTPS://Hooks.Example.COM/Path", "https://hooks.example.com/Path"),
    Row("https://hooks.example.com", "https://hooks.example.com/"),
    Row("https://hooks.example.com.:8443/", "https://hooks.example.com:8443/"),
    Row("https://hooks.example.com:/x", "https://hooks.example.com/x"),
    Row("https://v6.example.com/", "https://v6.example.com/"),
    Row("https://bücher.example/wh?q=ü", "https://xn--bcher-kva.example/wh?q=%C3%BC"),
    Row("https://[::ffff:8.8.8.8]/", "https://[::ffff:808:808]/"),
    Row("https://[64:ff9b::8.8.8.8]/", "https://[64:ff9b::808:808]/"),
    Row("https://[2002:808:808::1]/", "https://[2002:808:808::1]/"),
    Row("http://8.8.8.8/", "http://8.8.8.8/", https=False),
    # Scheme, userinfo, shape.
    Row("http://hooks.example.com/", "must use https (http is allowed only in development)"),
    Row("ftp://hooks.example.com/", "must use https, not ftp:"),
    Row("ftp://hooks.example.com/", "must use http or https, not ftp:", https=False),
    Row("//hooks.example.com/", "must use https, not no scheme"),
    Row("https://user:pw@hooks.example.com/", "must not contain a user name or password"),
    Row("https://hooks.example.com@10.0.0.5/", "must not contain a user name or password"),
    Row("https://hooks.example.com/#frag", "must not have a #fragment"),
    Row("https:///path", "must have a host"),
    Row("https://hooks.example.com:0/", "port 0 is outside 1-65535"),
    Row("https://hooks.example.com:99999/", "port 99999 is outside 1-65535"),
    Row("https://hooks.example.com:8x/", "port '8x' is not a number"),
    Row("https://evil.com\\@127.0.0.1/", "character that is not allowed"),
    Row("https://hooks.example.com/a b", "character that is not allowed"),
    Row("https://hooks.example.com/" + "a" * 2048, "longer than 2048 characters"),
    Row("https://%31%32%37.0.0.1/", "must not be percent-encoded"),
    Row("https://a..b/", "is not a valid host name"),
    Row("https://xn--zz.example/", "is not a valid internationalised name"),
    Row("https://::1/", "must be written in brackets"),
    # IPv4 in every spelling a client accepts.
    Row("http://127.0.0.1/", "127.0.0.1 is a loopback address", https=False),
    Row("https://2130706433/", "2130706433 (127.0.0.1) is a loopback address"),
    Row("https://0x7f000001/", "0x7f000001 (127.0.0.1) is a loopback"),
    Row("https://0x7f.0.0.1/", "0x7f.0.0.1 (127.0.0.1) is a loopback"),
    Row("https://0X7F.0x0.0.0x1/", "(127.0.0.1) is a loopback"),
    Row("https://0177.0.0.1/", "0177.0.0.1 (127.0.0.1) is a loopback"),
    Row("https://017700000001/", "(127.0.0.1) is a loopback"),
    Row("https://127.1/", "127.1 (127.0.0.1) is a loopback"),
    Row("https://127.0.1/", "(127.0.0.1) is a loopback"),
    Row("https://10.1/", "10.1 (10.0.0.1) is a private address"),
    Row("https://127.0.0.1./", "(127.0.0.1) is a loopback"),
    Row("https://１２７．０．０．１/", "(127.0.0.1) is a loopback"),
    Row("https://0/", "0 (0.0.0.0) is the unspecified address"),
    Row("https://0x/", "(0.0.0.0) is the unspecified address"),
    Row("https://3232235777/", "(192.168.1.1) is a private address"),
    Row("https://1.2.3.4.5/", "1.2.3.4.5 is not a valid IPv4 address"),
    Row("https://1.256.0.0/", "is not a valid IPv4 address"),
    Row("https://08.0.0.1/", "is not a valid IPv4 address"),
    Row("https://foo.0x1g/", "foo.0x1g could not be resolved"),  # a name: 0x1g is no number
    # Each class of address.
    Row("https://10.0.0.5/", "the webhook URL's host 10.0.0.5 is a private address: use a public https URL"),
    Row("https://172.16.0.1/", "is a private address"),
    Row("https://172.31.255.255/", "is a private address"),
    Row("https://192.168.0.1/", "is a private address"),
    Row("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    Row("https://100.64.0.1/", "is a carrier-grade NAT (shared) address"),
    Row("https://224.0.0.1/", "is a multicast address"),
    Row("https://0.1.2.3/", "is a reserved address"),
    Row("https://240.0.0.1/", "is a reserved address"),
    Row("https://255.255.255.255/", "is the broadcast address"),
    Row("https://198.18.0.1/", "is a benchmarking address"),
    Row("https://198.19.255.1/", "is a benchmarking address"),
    Row("https://192.0.2.1/", "is a documentation address"),
    Row("https://198.51.100.1/", "is a documentation address"),
    Row("https://203.0.113.1/", "is a documentation address"),
    Row("https://192.0.0.8/", "is a reserved address (IETF protocol assignments)"),
    Row("https://[::1]/", "::1 is a loopback address"),
    Row("https://[::]/", ":: is the unspecified address"),
    Row("https://[fc00::1]/", "is a private (unique local) address"),
    Row("https://[fd12:3456::1]/", "is a private (unique local) address"),
    Row("https://[fe80::1]/", "is a link-local address"),
    Row("https://[fe80::1%25eth0]/", "must not have a zone id"),
    Row("https://[fec0::1]/", "is a site-local address"),
    Row("https://[ff02::1]/", "is a multicast address"),
    Row("https://[2001:db8::1]/", "is a documentation address"),
    Row("https://[::ffff:127.0.0.1]/", "IPv4-mapped address embedding 127.0.0.1, a loopback address"),
    Row("https://[::ffff:7f00:1]/", "IPv4-mapped address embedding 127.0.0.1, a loopback address"),
    Row("https://[::ffff:a9fe:a9fe]/", "embedding 169.254.169.254, a link-local address"),
    Row("https://[::127.0.0.1]/", "IPv4-compatible address embedding 127.0.0.1, a loopback address"),
    Row("https://[::8.8.8.8]/", "a deprecated IPv4-compatible address"),
    Row("https://[64:ff9b::10.0.0.1]/", "NAT64 address embedding 10.0.0.1, a private address"),
    Row("https://[64:ff9b:1::1]/", "a reserved address (local-use NAT64)"),
    Row("https://[2002:a00:1::]/", "6to4 address embedding 10.0.0.1, a private address"),
    Row("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo address embedding 192.0.2.45"),
    Row("https://[2001:2::1]/", "is a benchmarking address"),
    Row("https://[100::1]/", "is a reserved address (discard-only)"),
    Row("https://[4000::1]/", "is a reserved address"),
    Row("https://[1.2.3.4]/", "not a valid"),
    Row("https://[12345::1]/", "not a valid URL: '12345::1'"),
    # Names judged by what they resolve to.
    Row("https://internal.example.com/", "internal.example.com resolves to 10.0.0.5, a private address"),
    Row("https://metadata.example.com/", "resolves to 169.254.169.254, a link-local address"),
    Row("https://mixed.example.com/", "resolves to 192.168.1.10, a private address"),
    Row(
        "https://mapped.example.com/", "resolves to ::ffff:a01:203, an IPv4-mapped address embedding 10.1.2.3"
    ),
    Row("https://localhost/", "resolves to 127.0.0.1, a loopback address"),
    Row("https://nowhere.example.com/", "nowhere.example.com could not be resolved"),
    Row("https://garbage.example.com/", "could not be resolved: the resolver answered 'not-an-ip'"),
    Row("https://empty.example.com/", "could not be resolved: no addresses"),
    # Loopback allowed for development, and nothing else with it.
    Row("http://127.0.0.1:8080/h", "http://127.0.0.1:8080/h", https=False, loopback=True),
    Row("http://127.1:8080/", "http://127.0.0.1:8080/", https=False, loopback=True),
    Row("http://[::1]:8080/", "http://[::1]:8080/", https=False, loopback=True),
    Row("http://localhost:8080/", "http://localhost:8080/", https=False, loopback=True),
    Row("http://10.0.0.5/", "is a private address", https=False, loopback=True),
    Row("http://169.254.169.254/", "is a link-local address", https=False, loopback=True),
    Row("http://0.0.0.0/", "is the unspecified address", https=False, loopback=True),
    Row("http://[::ffff:127.0.0.1]/", "embedding 127.0.0.1, a loopback address", https=False, loopback=True),
]


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}:{r.url[:60]}" for i, r in enumerate(ROWS)])
async def test_check_url(row: Row) -> None:
    resolver = StubResolver(NAMES)

    async def check() -> Target:
        return await check_url(
            url=row.url, resolver=resolver, require_https=row.https, allow_loopback=row.loopback
        )

    if row.refused:
        with pytest.raises(UnsafeUrl) as refusal:
            await check()
        assert row.expect in str(refusal.value)
    else:
        assert (await check()).url == row.expect


def test_enough_rows() -> None:
    assert len(ROWS) >= 40


def test_target_fields() -> None:
    named = parse_url("https://Hooks.Example.com:8443/a/b?x=1", require_https=True, allow_loopback=False)
    assert named == Target(
        url="https://hooks.example.com:8443/a/b?x=1",
        scheme="https",
        host="hooks.example.com",
        port=8443,
        path_and_query="/a/b?x=1",
        ip=None,
    )
    literal = parse_url("http://0x08080808/", require_https=False, allow_loopback=False)
    assert (literal.host, literal.port, literal.ip) == ("8.8.8.8", 80, ipaddress.IPv4Address("8.8.8.8"))


def test_a_normalised_url_parses_to_itself() -> None:
    first = parse_url("https://Bücher.example:443/ü?q=1", require_https=True, allow_loopback=False)
    assert parse_url(first.url, require_https=True, allow_loopback=False) == first


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2606:4700::1111", True),
        ("2a00:1450:4001:80b::200e", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("169.254.169.254", False),
        ("100.127.255.255", False),
        ("100.128.0.0", True),
        ("172.32.0.1", True),
    ],
)
def test_check_address(address: str, allowed: bool) -> None:
    ip = ipaddress.ip_address(address)
    if allowed:
        check_address(ip, allow_loopback=False)
    else:
        with pytest.raises(UnsafeUrl, match=f"^{re.escape(address)} is "):
            check_address(ip, allow_loopback=False)


def test_allow_loopback_lets_loopback_through_and_nothing_else() -> None:
    for address in ("127.0.0.1", "127.255.0.9", "::1"):
        assert address_class(ipaddress.ip_address(address), allow_loopback=True) is None
    for address in ("10.0.0.1", "169.254.169.254", "::", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0"):
        assert address_class(ipaddress.ip_address(address), allow_loopback=True) is not None


async def test_resolve_target_returns_checked_addresses_in_order() -> None:
    resolver = StubResolver(NAMES)
    target = parse_url("https://v6.example.com:8443/", require_https=True, allow_loopback=False)
    addresses = await resolve_target(target, resolver, allow_loopback=False)
    assert addresses == [ipaddress.ip_address("2606:4700::1111"), ipaddress.ip_address("93.184.215.14")]
    assert resolver.calls == [("v6.example.com", 8443)]


async def test_an_ip_literal_is_not_looked_up() -> None:
    resolver = StubResolver({})
    target = parse_url("https://0x08080808/", require_https=True, allow_loopback=False)
    assert await resolve_target(target, resolver, allow_loopback=False) == [ipaddress.ip_address("8.8.8.8")]
    assert resolver.calls == []


async def test_one_private_answer_refuses_the_name() -> None:
    resolver = StubResolver({"hooks.example.com": [["93.184.215.14", "10.0.0.7", "93.184.215.15"]]})
    target = parse_url("https://hooks.example.com/", require_https=True, allow_loopback=False)
    with pytest.raises(UnsafeUrl, match=re.escape("resolves to 10.0.0.7, a private address")):
        await resolve_target(target, resolver, allow_loopback=False)


async def test_system_resolver_reads_numeric_hosts_without_dns() -> None:
    # getaddrinfo answers a numeric host itself, so this needs no network.
    assert await SystemResolver().resolve("127.0.0.1", 443) == ["127.0.0.1"]


async def test_system_resolver_failure_is_unsafe_url() -> None:
    # ".invalid" never resolves (RFC 6761); without a network the lookup fails as well.
    with pytest.raises(UnsafeUrl, match=r"^the webhook URL's host nothing\.invalid could not be resolved: "):
        await SystemResolver(timeout=2.0).resolve("nothing.invalid", 443)
