"""The webhook sender against real servers on 127.0.0.x (plain and TLS), and with a
recording network backend where a test must show where connections go, or that none was
made at all."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpcore
import pytest

from krypton.adapters.webhooks.sender import (
    EXCERPT_CHARS,
    USER_AGENT,
    PinnedBackend,
    SendResult,
    WebhookSender,
    pinned,
)
from krypton.adapters.webhooks.ssrf import check_url
from tests.adapters.webhooks.test_ssrf import StubResolver
from tests.support.servers import in_ci

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

NAME = "hooks.example.test"  # .test never resolves for real: only the stub resolver knows it
PUBLIC = "93.184.215.14"


# ---------------------------------------------------------------------------------------
# A small HTTP/1.1 server: one request per connection, answered by a handler.


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    local_address: str  # the server address the client's TCP connection went to


Handler = Callable[[Seen, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class LocalServer:
    handler: Handler
    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    requests: list[Seen] = field(default_factory=list)
    port: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> LocalServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):  # handlers still sleeping or dripping
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:  # requests on this connection until the client closes it
                await self._answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client went away, which several tests make it do
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        seen = Seen(method, target, headers, body, writer.get_extra_info("sockname")[0])
        self.requests.append(seen)
        await self.handler(seen, writer)


def respond(
    status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = (), *, keep_alive: bool = False
) -> Handler:
    async def handler(seen: Seen, writer: asyncio.StreamWriter) -> None:
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        head += [] if keep_alive else ["Connection: close"]
        head += [f"{k}: {v}" for k, v in headers]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    return handler


async def stall(seen: Seen, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)  # cancelled when the server stops


async def drip(seen: Seen, writer: asyncio.StreamWriter) -> None:
    """Headers at once, then one body byte every 50 ms, forever: every read is quick."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
    while True:
        writer.write(b"1\r\nx\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)


async def endless(seen: Seen, writer: asyncio.StreamWriter) -> None:
    """A body that never ends: a sender that read it all would never come back."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"y" * 16384
    while True:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()


def sender(resolver: StubResolver | None = None, **options: object) -> WebhookSender:
    settings: dict[str, object] = {"allow_loopback": True, "require_https": False, "timeout": 5.0}
    settings.update(options)
    return WebhookSender(resolver or StubResolver({}), **settings)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Plain HTTP


async def test_200_with_body_excerpt() -> None:
    json = (("Content-Type", "application/json"),)
    async with LocalServer(respond(200, b'{"ok": true}', json)) as server, sender() as webhooks:
        result = await webhooks.send(f"http://127.0.0.1:{server.port}/hook?x=1", b'{"event": 1}', dict(json))
    assert (result.status, result.excerpt, result.error) == (200, '{"ok": true}', None)
    assert result.duration_ms >= 0
    [seen] = server.requests
    assert (seen.method, seen.target, seen.body) == ("POST", "/hook?x=1", b'{"event": 1}')
    assert seen.headers["user-agent"] == USER_AGENT
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"


async def test_410_is_returned_as_a_status_not_an_error() -> None:
    async with LocalServer(respond(410, b"gone")) as server, sender() as webhooks:
        result = await webhooks.send(f"http://127.0.0.1:{server.port}/", b"{}", {})
    assert result == SendResult(status=410, excerpt="gone", duration_ms=result.duration_ms, error=None)


async def test_a_redirect_is_not_followed() -> None:
    async with LocalServer(respond(200, b"landed")) as landing:
        location = f"http://127.0.0.1:{landing.port}/landing"
        async with LocalServer(respond(302, b"", (("Location", location),))) as server, sender() as webhooks:
            result = await webhooks.send(f"http://127.0.0.1:{server.port}/", b"{}", {})
    assert result.status == 302
    assert result.error == f"redirect to {location} not followed"
    assert len(server.requests) == 1
    assert landing.requests == []


async def test_a_slow_server_times_out() -> None:
    async with LocalServer(stall) as server, sender(timeout=0.5) as webhooks:
        result = await webhooks.send(f"http://127.0.0.1:{server.port}/", b"{}", {})
    assert (result.status, result.error) == (None, "timed out after 0.5 s")
    assert len(server.requests) == 1


async def test_a_dripping_response_times_out_as_a_whole() -> None:
    # Each byte comes well within httpx's read timeout; only the total bound catches it.
    async with LocalServer(drip) as server, sender(timeout=0.5) as webhooks:
        # The outer bound only turns a regression into a failure instead of a hang.
        async with asyncio.timeout(60):
            result = await webhooks.send(f"http://127.0.0.1:{server.port}/", b"{}", {})
    assert result.error == "timed out after 0.5 s"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening, so a connection to it is refused (kept bound for
    the test, so nothing else can take it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_connection_refused(closed_port: int) -> None:
    async with sender() as webhooks:
        result = await webhooks.send(f"http://127.0.0.1:{closed_port}/", b"{}", {})
    assert (result.status, result.excerpt, result.error) == (None, "", "connection refused")


async def test_a_large_body_is_read_only_in_part() -> None:
    async with LocalServer(endless) as server, sender(timeout=10.0) as webhooks:
        result = await webhooks.send(f"http://127.0.0.1:{server.port}/", b"{}", {})
    assert (result.status, result.error) == (200, None)
    assert result.excerpt == "y" * EXCERPT_CHARS


async def test_a_body_that_is_not_utf8_is_decoded_with_replacements() -> None:
    async with LocalServer(respond(500, b"bad \xff\xfe body")) as server, sender() as webhooks:
        result = await webhooks.send(f"http://127.0.0.1:{server.port}/", b"{}", {})
    assert (result.status, result.excerpt) == (500, "bad \ufffd\ufffd body")


async def test_host_header_is_the_name_while_the_connection_goes_to_the_checked_ip() -> None:
    # The server listens on 127.0.0.2 only; the stub resolves the name there (the first of
    # two answers), and the system resolver, which does not know the name, is never asked.
    resolver = StubResolver({NAME: [["127.0.0.2", "127.0.0.3"]]})
    async with LocalServer(respond(204), host="127.0.0.2") as server, sender(resolver) as webhooks:
        result = await webhooks.send(f"http://{NAME}:{server.port}/in", b"{}", {"Host": "evil.example"})
    assert (result.status, result.error) == (204, None)
    [seen] = server.requests
    assert seen.headers["host"] == f"{NAME}:{server.port}"
    assert seen.local_address == "127.0.0.2"
    assert resolver.calls == [(NAME, server.port)]


async def test_the_user_agent_can_be_replaced() -> None:
    async with LocalServer(respond(200)) as server, sender() as webhooks:
        await webhooks.send(f"http://127.0.0.1:{server.port}/", b"{}", {"User-Agent": "Mine/2"})
    assert server.requests[0].headers["user-agent"] == "Mine/2"


# ---------------------------------------------------------------------------------------
# Refusals at send time: no connection at all


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """The network, replaced: records where each connection goes and what is written on
    it, and answers every request with 200 "ok"."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.written = bytearray()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connections.append((host, port))
        return _RecordingStream(self.written)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AssertionError("no Unix sockets")

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("no retries")


class _RecordingStream(httpcore.AsyncMockStream):
    def __init__(self, written: bytearray) -> None:
        super().__init__([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n", b"ok"])
        self._written = written

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._written.extend(buffer)


def offline_sender(resolver: StubResolver, backend: RecordingBackend) -> WebhookSender:
    return WebhookSender(resolver, allow_loopback=False, require_https=True, network_backend=backend)


async def test_a_name_rebound_to_a_private_address_is_refused_at_send_time() -> None:
    resolver = StubResolver({NAME: [[PUBLIC], ["10.0.0.5"]]})
    registered = await check_url(f"https://{NAME}/hook", resolver, require_https=True, allow_loopback=False)
    backend = RecordingBackend()
    async with offline_sender(resolver, backend) as webhooks:
        result = await webhooks.send(registered.url, b"{}", {})
    assert result.status is None
    assert result.error == (
        f"refused: the webhook URL's host {NAME} resolves to 10.0.0.5, a private address: "
        "use a public https URL"
    )
    assert backend.connections == []
    assert resolver.calls == [(NAME, 443), (NAME, 443)]  # registration, then this send: once each


async def test_a_name_with_a_public_and_a_private_answer_is_refused() -> None:
    resolver = StubResolver({NAME: [[PUBLIC, "192.168.0.10"]]})
    backend = RecordingBackend()
    async with offline_sender(resolver, backend) as webhooks:
        result = await webhooks.send(f"https://{NAME}/", b"{}", {})
    assert result.error is not None
    assert "resolves to 192.168.0.10, a private address" in result.error
    assert backend.connections == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (
            "http://hooks.example.com/",
            "refused: the webhook URL must use https (http is allowed only in development)",
        ),
        (
            "https://0x7f000001/",
            "refused: the webhook URL's host 0x7f000001 (127.0.0.1) is a loopback address",
        ),
        (
            "https://169.254.169.254/",
            "refused: the webhook URL's host 169.254.169.254 is a link-local address",
        ),
        (
            "https://u:p@hooks.example.com/",
            "refused: the webhook URL must not contain a user name or password",
        ),
    ],
)
async def test_unsafe_urls_are_refused_without_a_connection(url: str, error: str) -> None:
    backend = RecordingBackend()
    async with offline_sender(StubResolver({}), backend) as webhooks:
        result = await webhooks.send(url, b"{}", {})
    assert result.error is not None and result.error.startswith(error)
    assert backend.connections == []


async def test_each_send_resolves_once_and_sends_to_the_first_address() -> None:
    resolver = StubResolver({NAME: [[PUBLIC, "93.184.215.15"], ["93.184.215.16"]]})
    backend = RecordingBackend()
    async with offline_sender(resolver, backend) as webhooks:
        first = await webhooks.send(f"https://{NAME}:8443/a?b=1", b"{}", {})
        second = await webhooks.send(f"https://{NAME}:8443/a?b=1", b"{}", {})
    assert (first.status, second.status, first.excerpt) == (200, 200, "ok")
    assert resolver.calls == [(NAME, 8443), (NAME, 8443)]
    assert backend.connections == [(PUBLIC, 8443), ("93.184.215.16", 8443)]
    assert bytes(backend.written).count(f"Host: {NAME}:8443\r\n".encode()) == 2


async def test_an_ipv6_literal_is_connected_to_and_named_in_brackets() -> None:
    backend = RecordingBackend()
    async with offline_sender(StubResolver({}), backend) as webhooks:
        result = await webhooks.send("https://[2606:4700::1111]:8443/", b"{}", {})
    assert result.status == 200
    assert backend.connections == [("2606:4700::1111", 8443)]
    assert b"Host: [2606:4700::1111]:8443\r\n" in backend.written


async def test_the_backend_connects_only_to_the_pinned_address() -> None:
    backend = RecordingBackend()
    pinned_backend = PinnedBackend(backend)
    with pytest.raises(httpcore.ConnectError, match="no checked address"):
        await pinned_backend.connect_tcp(NAME, 443)  # nothing pinned
    with pinned(NAME, 443, PUBLIC):
        for host, port in ((NAME, 8443), ("other.example.test", 443)):
            with pytest.raises(httpcore.ConnectError, match=f"no checked address for {host}:{port}"):
                await pinned_backend.connect_tcp(host, port)
        await pinned_backend.connect_tcp(NAME, 443)
    assert backend.connections == [(PUBLIC, 443)]


# ---------------------------------------------------------------------------------------
# TLS: the certificate is verified against the name, over a connection to the checked IP

# Fixed validity far around any date the tests run on, so no test depends on the clock.
NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2999, 12, 31, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Authority:
    """A throw-away certificate authority (cryptography is imported only where used, so
    the other tests run where it is missing)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def client_context(self) -> ssl.SSLContext:
        from cryptography.hazmat.primitives import serialization

        return ssl.create_default_context(cadata=self.cert.public_bytes(serialization.Encoding.PEM).decode())

    def server_context(self, name: str, tmp_path: Path, sni_seen: list[str]) -> ssl.SSLContext:
        """A server context holding a certificate for `name` signed by this authority;
        the names clients ask for (SNI) go to `sni_seen`."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID

        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _builder(name, self.cert.subject, key)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        context.sni_callback = lambda _sock, server_name, _ctx: sni_seen.append(server_name or "")
        return context


def _builder(common_name: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
    )


@pytest.fixture(scope="module")
def authority() -> Authority:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if in_ci():
            raise
        pytest.skip("the TLS tests need the cryptography package to make certificates")

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Krypton test CA")])
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        _builder("Krypton test CA", name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


@contextlib.asynccontextmanager
async def tls_server(
    authority: Authority, cert_name: str, tmp_path: Path, *, keep_alive: bool = False
) -> AsyncIterator[tuple[LocalServer, list[str]]]:
    sni_seen: list[str] = []
    context = authority.server_context(cert_name, tmp_path, sni_seen)
    async with LocalServer(respond(200, b"secure", keep_alive=keep_alive), tls=context) as server:
        yield server, sni_seen


async def test_tls_verifies_the_certificate_against_the_name(authority: Authority, tmp_path: Path) -> None:
    resolver = StubResolver({NAME: [["127.0.0.1"]]})
    webhooks = sender(resolver, require_https=True, verify=authority.client_context())
    async with tls_server(authority, NAME, tmp_path) as (server, sni_seen), webhooks:
        result = await webhooks.send(f"https://{NAME}:{server.port}/tls", b"{}", {})
    assert (result.status, result.excerpt, result.error) == (200, "secure", None)
    assert sni_seen == [NAME]
    [seen] = server.requests
    assert (seen.headers["host"], seen.local_address) == (f"{NAME}:{server.port}", "127.0.0.1")


async def test_tls_refuses_a_certificate_for_another_name(authority: Authority, tmp_path: Path) -> None:
    resolver = StubResolver({NAME: [["127.0.0.1"]]})
    webhooks = sender(resolver, require_https=True, verify=authority.client_context())
    async with tls_server(authority, "other.example.test", tmp_path) as (server, sni_seen), webhooks:
        result = await webhooks.send(f"https://{NAME}:{server.port}/tls", b"{}", {})
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("TLS certificate not accepted: Hostname mismatch")
    assert NAME in result.error
    assert sni_seen == [NAME]
    assert server.requests == []


async def test_tls_refuses_a_certificate_from_an_unknown_authority(
    authority: Authority, tmp_path: Path
) -> None:
    resolver = StubResolver({NAME: [["127.0.0.1"]]})
    # The default trust store: the test authority is not in it.
    async with (
        tls_server(authority, NAME, tmp_path) as (server, _),
        sender(resolver, require_https=True) as webhooks,
    ):
        result = await webhooks.send(f"https://{NAME}:{server.port}/tls", b"{}", {})
    assert result.error is not None
    assert result.error.startswith("TLS certificate not accepted:")
    assert server.requests == []


async def test_a_kept_alive_tls_connection_serves_only_the_name_it_was_verified_for(
    authority: Authority, tmp_path: Path
) -> None:
    # Two names on one address: the pooled connection, verified for NAME, is reused for
    # NAME but never carries OTHER's request, which needs a handshake of its own (and
    # fails it here, the certificate being NAME's).
    other = "other.example.test"
    resolver = StubResolver({NAME: [["127.0.0.1"]], other: [["127.0.0.1"]]})
    webhooks = sender(resolver, require_https=True, verify=authority.client_context())
    async with tls_server(authority, NAME, tmp_path, keep_alive=True) as (server, sni_seen), webhooks:
        first = await webhooks.send(f"https://{NAME}:{server.port}/1", b"{}", {})
        second = await webhooks.send(f"https://{NAME}:{server.port}/2", b"{}", {})
        third = await webhooks.send(f"https://{other}:{server.port}/3", b"{}", {})
    assert (first.status, second.status) == (200, 200)
    assert third.error is not None and third.error.startswith(
        "TLS certificate not accepted: Hostname mismatch"
    )
    assert [seen.target for seen in server.requests] == ["/1", "/2"]
    assert sni_seen == [NAME, other]  # the second handshake: OTHER's, which failed
    assert server.connections == 1  # /1 and /2 on one connection


class KeepAliveBackend(RecordingBackend):
    """Like RecordingBackend, but each connection stays open and answers many requests."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        self.connections.append((host, port))
        return httpcore.AsyncMockStream([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"] * 50)


async def test_sends_to_one_name_reuse_a_kept_alive_connection_within_the_limit() -> None:
    resolver = StubResolver({NAME: [[PUBLIC]] * 20})
    backend = KeepAliveBackend()
    async with WebhookSender(resolver, allow_loopback=False, require_https=True, network_backend=backend,
                             max_connections=2) as webhooks:
        for _ in range(5):  # one after the other: one connection serves them all
            assert (await webhooks.send(f"https://{NAME}/a", b"{}", {})).status == 200
        assert backend.connections == [(PUBLIC, 443)]
        results = await asyncio.gather(*(webhooks.send(f"https://{NAME}/a", b"{}", {}) for _ in range(10)))
    assert {r.status for r in results} == {200}
    assert len(backend.connections) <= 2  # never more at once than max_connections
