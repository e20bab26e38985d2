"""Which webhook URLs Krypton may send to: only hosts that are, or resolve to, public addresses.

A webhook URL is the easiest way into the server's private network (the cloud metadata
service at 169.254.169.254, a database on 10.x, an admin page on 127.0.0.1), so a URL is
checked when a merchant registers it and again before every send, and the sender connects
to the very address that was checked: a second DNS lookup could answer differently (DNS
rebinding).

`parse_url` does the static checks, including a host written as an IP address in any
spelling a client would accept (decimal `2130706433`, hex `0x7f.1`, octal `0177.0.0.1`,
short `127.1`, IPv4-mapped IPv6); `resolve_target` resolves a name and refuses it when any
of its addresses is unsafe; `check_url` does both, for registration.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import quote, urlsplit

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH: Final = 2048
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
RESOLVE_TIMEOUT: Final = 5.0  # seconds for one DNS lookup
ADVICE: Final = "use a public https URL"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Address blocks that are not public unicast, from IANA's special-purpose registries, in
# the order they are tried (the first match names the class). 255.255.255.255 comes before
# 240/4 so that it is called what it is.
_IPV4_BLOCKS: Final[tuple[tuple[ipaddress.IPv4Network, str], ...]] = (
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V4("0.0.0.0/32"), "the unspecified address"),
    (_V4("0.0.0.0/8"), "a reserved address ('this network')"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a carrier-grade NAT (shared) address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address (where cloud metadata services live)"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.0.0.0/24"), "a reserved address (IETF protocol assignments)"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), "a reserved address (the retired 6to4 relay)"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)

_IPV6_BLOCKS: Final[tuple[tuple[ipaddress.IPv6Network, str], ...]] = (
    (_V6("::/128"), "the unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("64:ff9b:1::/48"), "a reserved address (local-use NAT64)"),
    (_V6("100::/64"), "a reserved address (discard-only)"),
    (_V6("2001:2::/48"), "a benchmarking address"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("3fff::/20"), "a documentation address"),
    (_V6("2001::/23"), "a reserved address (IETF protocol assignments)"),
    (_V6("fc00::/7"), "a private (unique local) address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
)
_IPV6_GLOBAL_UNICAST: Final = _V6("2000::/3")
_IPV6_COMPATIBLE: Final = _V6("::/96")  # deprecated IPv4-compatible addresses, ::a.b.c.d
_NAT64: Final = _V6("64:ff9b::/96")
_TEREDO: Final = _V6("2001::/32")

_LOOPBACK: Final = (_V4("127.0.0.0/8"), _V6("::1/128"))

# Characters a host name may hold once IDNA has mapped it to ASCII. Underscores are not
# valid in host names but are in some DNS names; the address check decides either way.
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class UnsafeUrl(ValueError):
    """A webhook URL Krypton refuses to send to; the message tells the merchant what to do."""


@dataclass(frozen=True)
class Target:
    """A statically checked webhook URL, split into what the sender needs.

    `host` is the name as given (lower case, IDNA-encoded) or, for an IP literal, the
    normalised address without brackets; `ip` is that address (None for a name)."""

    url: str
    scheme: str
    host: str
    port: int
    path_and_query: str
    ip: IPAddress | None = None


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses `host` resolves to for a TCP connection, as strings; raises
        UnsafeUrl when it cannot be resolved."""
        ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo, TCP), bounded by a timeout."""

    def __init__(self, timeout: float = RESOLVE_TIMEOUT) -> None:
        self._timeout = timeout

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except TimeoutError:
            raise UnsafeUrl(
                f"the webhook URL's host {host} could not be resolved: no answer within {self._timeout:g} s"
            ) from None
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeUrl(f"the webhook URL's host {host} could not be resolved: {exc}") from None
        # getaddrinfo lists an address once per matching socket type; keep the first of each.
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


# ---------------------------------------------------------------------------------------
# Addresses


def address_class(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    """What makes `ip` unsafe to send to ("a private address", ...), or None when it is a
    public unicast address (or loopback, with `allow_loopback`)."""
    if allow_loopback and any(ip in net for net in _LOOPBACK if net.version == ip.version):
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return _block_class(ip, _IPV4_BLOCKS)
    return _ipv6_class(ip)


def check_address(ip: IPAddress, *, allow_loopback: bool) -> None:
    """Raise UnsafeUrl unless `ip` is a public unicast address (or loopback when allowed)."""
    reason = address_class(ip, allow_loopback=allow_loopback)
    if reason is not None:
        raise UnsafeUrl(f"{ip} is {reason}: {ADVICE}")


def _block_class(
    ip: IPAddress, blocks: Sequence[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]
) -> str | None:
    for net, reason in blocks:
        if ip in net:
            return reason
    return None


def _ipv6_class(ip: ipaddress.IPv6Address) -> str | None:
    # Addresses that carry an IPv4 address lead to it (mapped, NAT64, 6to4, Teredo): judge
    # them by the IPv4 address, since that is where the packets end up.
    for kind, embedded in _embedded_ipv4(ip):
        inner = address_class(embedded, allow_loopback=False)
        if inner is not None:
            return f"{kind} address embedding {embedded}, {inner}"
    if ip.ipv4_mapped is not None or ip in _NAT64:
        return None
    if ip in _TEREDO or ip.sixtofour is not None:
        return None
    reason = _block_class(ip, _IPV6_BLOCKS)
    if reason is not None:
        return reason
    if ip in _IPV6_COMPATIBLE:
        return "a deprecated IPv4-compatible address"
    if ip not in _IPV6_GLOBAL_UNICAST:
        return "a reserved address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [("an IPv4-mapped", ip.ipv4_mapped)]
    if ip in _NAT64:
        return [("a NAT64", last32)]
    if ip.sixtofour is not None:
        return [("a 6to4", ip.sixtofour)]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [("a Teredo", server), ("a Teredo", client)]
    if ip in _IPV6_COMPATIBLE and int(ip) > 1:
        return [("an IPv4-compatible", last32)]
    return []


# ---------------------------------------------------------------------------------------
# URLs


def parse_url(url: str, *, require_https: bool, allow_loopback: bool) -> Target:
    """The static checks of a webhook URL; a host written as an IP address is checked here.

    Raises UnsafeUrl with a sentence the merchant can act on."""
    url = url.strip()
    if not url:
        raise UnsafeUrl("the webhook URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the webhook URL is longer than {MAX_URL_LENGTH} characters")
    bad = next((c for c in url if c.isspace() or not c.isprintable() or c == "\\"), None)
    if bad is not None:
        raise UnsafeUrl(f"the webhook URL contains a character that is not allowed: {bad!r}")
    if "#" in url:
        raise UnsafeUrl("the webhook URL must not have a #fragment: it is never sent to the server")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UnsafeUrl(f"the webhook URL is not a valid URL: {exc}") from None
    scheme = _check_scheme(parts.scheme, require_https=require_https)
    host_text, port = _split_authority(parts.netloc, scheme)
    host, ip = _parse_host(host_text)
    if ip is not None:
        reason = address_class(ip, allow_loopback=allow_loopback)
        if reason is not None:
            # Name the address as written too: "0x7f.1" alone would not tell the merchant much.
            shown = str(ip) if host_text.strip("[]").lower() == str(ip) else f"{host_text} ({ip})"
            raise UnsafeUrl(f"the webhook URL's host {shown} is {reason}: {ADVICE}")
    path_and_query = _encode_path((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    shown_host = f"[{host}]" if isinstance(ip, ipaddress.IPv6Address) else host
    shown_port = "" if port == DEFAULT_PORTS[scheme] else f":{port}"
    return Target(
        url=f"{scheme}://{shown_host}{shown_port}{path_and_query}",
        scheme=scheme,
        host=host,
        port=port,
        path_and_query=path_and_query,
        ip=ip,
    )


def _check_scheme(scheme: str, *, require_https: bool) -> str:
    scheme = scheme.lower()
    if scheme == "https":
        return scheme
    if scheme == "http":
        if require_https:
            raise UnsafeUrl("the webhook URL must use https (http is allowed only in development)")
        return scheme
    allowed = "https" if require_https else "http or https"
    shown = f"{scheme}:" if scheme else "no scheme"
    raise UnsafeUrl(f"the webhook URL must use {allowed}, not {shown}")


def _split_authority(netloc: str, scheme: str) -> tuple[str, int]:
    """The host text (brackets kept for IPv6) and the port of `netloc`."""
    if "@" in netloc:
        raise UnsafeUrl("the webhook URL must not contain a user name or password (user:password@)")
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise UnsafeUrl("the webhook URL's host has an unclosed '[' (IPv6 addresses go in [...])")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UnsafeUrl(f"the webhook URL has unexpected text after its host: {rest!r}")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = netloc.partition(":")
        if ":" in port_text:
            raise UnsafeUrl("the webhook URL's IPv6 host must be written in brackets: https://[2001:db8::1]/")
    if not host:
        raise UnsafeUrl("the webhook URL must have a host, as in https://hooks.example.com/krypton")
    return host, _parse_port(port_text, scheme)


def _parse_port(text: str, scheme: str) -> int:
    if not text:  # "host:" means the default port, as browsers read it
        return DEFAULT_PORTS[scheme]
    if not text.isascii() or not text.isdigit():
        raise UnsafeUrl(f"the webhook URL's port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise UnsafeUrl(f"the webhook URL's port {port} is outside 1-65535")
    return port


def _parse_host(text: str) -> tuple[str, IPAddress | None]:
    """The normalised host and, for an IP literal in any spelling, its address."""
    if text.startswith("["):
        ip6 = _parse_ipv6(text[1:-1])
        return str(ip6), ip6
    if "%" in text:
        raise UnsafeUrl("the webhook URL's host must not be percent-encoded")
    host = _to_ascii(text)
    # As the URL standard does: a host whose last label is a number is an IPv4 address, in
    # whichever spelling; one that does not parse as such is invalid, never a domain name.
    if _ends_in_number(host):
        ip4 = _parse_ipv4(host)
        if ip4 is None:
            raise UnsafeUrl(f"the webhook URL's host {text} is not a valid IPv4 address")
        return str(ip4), ip4
    return _check_domain(host, text), None


def _parse_ipv6(text: str) -> ipaddress.IPv6Address:
    if "%" in text:
        raise UnsafeUrl("the webhook URL's IPv6 host must not have a zone id (%...)")
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise UnsafeUrl(f"the webhook URL's host [{text}] is not a valid IPv6 address") from None


def _to_ascii(text: str) -> str:
    """The host in lower case, internationalised names in IDNA form (UTS #46 mapping, which
    also turns full-width digits and dots into ASCII before the IPv4 check sees them)."""
    if text.isascii():
        return text.lower()
    try:
        return idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UnsafeUrl(f"the webhook URL's host {text} is not a valid host name: {exc}") from None


def _check_domain(host: str, given: str) -> str:
    host = host.removesuffix(".")  # "example.com." is the same name as "example.com"
    labels = host.split(".")
    if (
        not set(host) <= _HOST_CHARS
        or len(host) > 253
        or any(not label or len(label) > 63 for label in labels)
    ):
        raise UnsafeUrl(f"the webhook URL's host {given} is not a valid host name")
    if any(label.startswith("xn--") for label in labels):
        try:  # an "xn--" label must be valid punycode: HTTP clients refuse it otherwise
            idna.decode(host)
        except idna.IDNAError:
            raise UnsafeUrl(f"the webhook URL's host {given} is not a valid internationalised name") from None
    return host


def _ends_in_number(host: str) -> bool:
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    return (last.isascii() and last.isdigit()) or _ipv4_number(last) is not None


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 address as inet_aton and the URL standard read it: 0x… is hex,
    a leading 0 octal, otherwise decimal; None when it is not a number."""
    if not part:
        return None
    radix, digits = 10, "0123456789"
    if part[:2].lower() == "0x":
        radix, digits, part = 16, "0123456789abcdef", part[2:]
    elif len(part) > 1 and part.startswith("0"):
        radix, digits, part = 8, "01234567", part[1:]
    if not part:  # "0x" alone is zero
        return 0
    if any(c not in digits for c in part.lower()):
        return None
    return int(part, radix)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` as an IPv4 address in any of its one to four part spellings (`127.1`,
    `0x7f000001`), the last part filling the remaining bytes; None when it is not one."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *leading, last = values
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(values)):
        return None
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(leading))
    return ipaddress.IPv4Address(value)


def _encode_path(path: str) -> str:
    """Non-ASCII characters of the path and query percent-encoded as UTF-8 (HTTP sends
    ASCII); everything else is kept as the merchant wrote it."""
    return "".join(c if c.isascii() else quote(c, safe="") for c in path)


# ---------------------------------------------------------------------------------------
# Resolution


async def resolve_target(target: Target, resolver: Resolver, *, allow_loopback: bool) -> list[IPAddress]:
    """The checked addresses of `target`, in the resolver's order; an IP literal is not
    looked up. One unsafe address refuses the URL: a client may pick any of them, and an
    attacker who controls the name decides which."""
    if target.ip is not None:
        check_address(target.ip, allow_loopback=allow_loopback)
        return [target.ip]
    answers = await resolver.resolve(target.host, target.port)
    if not answers:
        raise UnsafeUrl(f"the webhook URL's host {target.host} could not be resolved: no addresses")
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            ip = ipaddress.ip_address(answer)
        except ValueError:
            raise UnsafeUrl(
                f"the webhook URL's host {target.host} could not be resolved: "
                f"the resolver answered {answer!r}, not an address"
            ) from None
        reason = address_class(ip, allow_loopback=allow_loopback)
        if reason is not None:
            raise UnsafeUrl(f"the webhook URL's host {target.host} resolves to {ip}, {reason}: {ADVICE}")
        addresses.append(ip)
    return addresses


async def check_url(url: str, resolver: Resolver, *, require_https: bool, allow_loopback: bool) -> Target:
    """Everything checked when a merchant registers a webhook URL: parse, then resolve."""
    target = parse_url(url, require_https=require_https, allow_loopback=allow_loopback)
    await resolve_target(target, resolver, allow_loopback=allow_loopback)
    return target
