"""One webhook delivery: an HTTP POST to the address that was just checked.

Before every send the URL is parsed and resolved again (a name can change its answers
after registration), and the connection goes to the first checked address itself: the
request keeps the name (for the `Host` header, the TLS server name and the certificate
check), and the connection pool's network backend connects to the pinned address instead
of asking DNS. No second lookup happens, so a DNS answer that changes between the check
and the connection cannot redirect it. (A pooled connection to the same name and port, opened
by an earlier send to the address that send checked, may carry the request: that address
was checked for this name too.)

Why the name stays in the URL instead of the IP (with the name only in `Host` and SNI):
httpcore pools connections by the URL's scheme, host and port, so with the IP there a TLS
connection verified for one name would be reused for another name on the same address,
its certificate never checked. Keyed by the name, a connection only serves the name it
was verified for, and it goes to an address that was checked for that name.

Nothing here raises for a network problem or an unsafe URL: they come back as
`SendResult.error`, a sentence for the delivery log. Retries are the caller's business.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import httpcore
import httpx
from prometheus_client import Counter, Histogram

from krypton.adapters.webhooks.ssrf import (
    Resolver,
    Target,
    UnsafeUrl,
    parse_url,
    resolve_target,
)

ATTEMPTS = Counter("krypton_webhook_attempts_total",
                   "Webhook attempts by outcome: the answer's status class (2xx … 5xx), refused "
                   "(an unsafe address at send time) or error (timeout, connection)", ["outcome"])
ATTEMPT_SECONDS = Histogram("krypton_webhook_attempt_seconds", "How long webhook attempts took",
                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
USER_AGENT: Final = "Krypton-Webhooks/1"
MAX_BODY_BYTES: Final = 64 * 1024  # read at most this much of a response
EXCERPT_CHARS: Final = 1024  # and keep at most this much of it
MAX_LOCATION_CHARS: Final = 512  # of a redirect's Location in the error sentence
KEEPALIVE_SECONDS: Final = 5.0  # an idle pooled connection is closed after this


@dataclass(frozen=True)
class SendResult:
    """What one attempt got: the status (None when no response came), the start of the
    response body, how long it took, and a sentence when something went wrong (None for
    any response that is not a redirect: judging statuses is the caller's job)."""

    status: int | None
    excerpt: str
    duration_ms: int
    error: str | None


class WebhookSender:
    """Sends webhook POSTs through one connection pool; `aclose` (or `async with`) ends it."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        allow_loopback: bool,
        require_https: bool,
        timeout: float = 10.0,
        max_connections: int = 100,
        verify: ssl.SSLContext | bool = True,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """`verify` as httpx takes it; `network_backend` opens the TCP connections (tests
        replace it; it is only ever asked for a checked address)."""
        self._resolver = resolver
        self._allow_loopback = allow_loopback
        self._require_https = require_https
        self._timeout = timeout
        pool = LeanPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=max_connections,
            keepalive_expiry=KEEPALIVE_SECONDS,
            network_backend=PinnedBackend(network_backend or httpcore.AnyIOBackend()),
        )
        self._client = httpx.AsyncClient(
            transport=PoolTransport(pool),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            # No proxy or .netrc from the environment: a proxy would make its own DNS
            # lookup and connect wherever it likes.
            trust_env=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """POST `body` to `url` with `headers` (a `User-Agent` is added unless given).

        The URL is checked again here; an unsafe one makes no connection and comes back
        with the error "refused: <why>"."""
        result = await self._send(url, body, headers)
        ATTEMPTS.labels(_outcome(result)).inc()
        ATTEMPT_SECONDS.observe(result.duration_ms / 1000)
        return result

    async def _send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        started = time.monotonic()
        try:
            target = parse_url(url, require_https=self._require_https, allow_loopback=self._allow_loopback)
            addresses = await resolve_target(target, self._resolver, allow_loopback=self._allow_loopback)
        except UnsafeUrl as exc:
            return _result(started, error=f"refused: {exc}")
        try:
            with pinned(target.host, target.port, str(addresses[0])):
                # Bounds the whole exchange: httpx's timeouts are per phase and per read,
                # so a server dripping one byte a second would never trip them.
                async with asyncio.timeout(self._timeout):
                    return await self._post(target, body, headers, started)
        except (TimeoutError, httpx.TimeoutException):
            return _result(started, error=f"timed out after {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return _result(started, error=_describe(exc))

    async def _post(
        self, target: Target, body: bytes, headers: Mapping[str, str], started: float
    ) -> SendResult:
        request = self._client.build_request(
            "POST",
            httpx.URL(
                scheme=target.scheme,
                host=target.host,
                port=target.port,
                raw_path=target.path_and_query.encode("ascii"),
            ),
            content=body,
            headers=_request_headers(headers),
        )
        response = await self._client.send(request, stream=True)
        try:
            head = await _read_head(response)
        finally:
            await response.aclose()
        excerpt = _decode(head, response.charset_encoding)[:EXCERPT_CHARS]
        error = None
        if 300 <= response.status_code < 400:
            location = response.headers.get("location")
            where = f"to {location[:MAX_LOCATION_CHARS]} " if location else "(no Location) "
            error = f"redirect {where}not followed"
        return _result(started, status=response.status_code, excerpt=excerpt, error=error)


def _request_headers(given: Mapping[str, str]) -> httpx.Headers:
    headers = httpx.Headers({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    headers.update(given)
    # httpx writes Host from the URL, which holds the name the merchant registered.
    headers.pop("Host", None)
    return headers


async def _read_head(response: httpx.Response) -> bytes:
    """At most MAX_BODY_BYTES of the body, undecoded (we asked for no compression, and a
    compressed body could inflate far beyond what we meant to read); stops early."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


def _describe(exc: httpx.HTTPError) -> str:
    """A sentence for the delivery log, from the exception and what caused it."""
    causes = _causes(exc)
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        cert = next(c for c in causes if isinstance(c, ssl.SSLCertVerificationError))
        return f"TLS certificate not accepted: {cert.verify_message or cert}"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return f"TLS handshake failed: {exc}"
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in str(exc).lower():
        return "connection refused"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP protocol: {exc}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return f"the connection broke: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions behind it (httpx and httpcore each wrap the one below)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _result(started: float, *, status: int | None = None, excerpt: str = "", error: str | None) -> SendResult:
    return SendResult(
        status=status,
        excerpt=excerpt,
        duration_ms=round((time.monotonic() - started) * 1000),
        error=error,
    )


def _outcome(result: SendResult) -> str:
    """The metric label of an attempt: its status class (2xx … 5xx), refused or error."""
    if result.status is not None:
        return f"{result.status // 100}xx"
    return "refused" if (result.error or "").startswith("refused") else "error"


# ---------------------------------------------------------------------------------------
# Connecting to the checked address


@dataclass(frozen=True)
class _Pin:
    host: str  # as in the request URL: the name, or an IP literal without brackets
    port: int
    address: str  # the checked address to connect to instead


# The address checked for the send running in this task: httpcore opens a connection in
# the task of the request that needs it, so the backend below finds it here.
_PIN: ContextVar[_Pin | None] = ContextVar("webhook_pin", default=None)


@contextmanager
def pinned(host: str, port: int, address: str) -> Iterator[None]:
    """Within the block, a connection to `host`:`port` goes to `address` (and no other
    connection is made)."""
    token = _PIN.set(_Pin(host, port, address))
    try:
        yield
    finally:
        _PIN.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens connections only to the address checked for the current send, never by
    looking the name up again; anything else is refused. (The `timeout` parameters below
    are httpcore's interface, hence the noqa.)"""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or (pin.host, pin.port) != (host, port):
            raise httpcore.ConnectError(f"no checked address for {host}:{port}: not connecting")
        return await self._inner.connect_tcp(
            pin.address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's exceptions as httpx's, as httpx's own transport maps them (most specific first).
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise


class LeanPool:
    """Keep-alive connections per origin, the last idle one reused first, and at most
    `max_connections` requests in flight. httpcore's AsyncConnectionPool re-examines every
    connection twice per request (a poll() on each idle socket, and an idle count that is
    quadratic in the connections): at 16 connections that cost more CPU than the request."""

    def __init__(self, *, ssl_context: ssl.SSLContext, max_connections: int, keepalive_expiry: float,
                 network_backend: httpcore.AsyncNetworkBackend) -> None:
        self._ssl_context = ssl_context
        self._keepalive = keepalive_expiry
        self._backend = network_backend
        self._slots = asyncio.Semaphore(max_connections)
        # By (scheme, host, port): httpcore's Origin is not hashable.
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}

    def _take(self, origin: httpcore.Origin) -> tuple[httpcore.AsyncHTTPConnection,
                                                      list[httpcore.AsyncHTTPConnection]]:
        """A reusable idle connection (or a new one), and the stale ones met on the way."""
        idle = self._idle.setdefault(_key(origin), [])
        stale: list[httpcore.AsyncHTTPConnection] = []
        while idle:
            connection = idle.pop()
            if connection.is_available() and not connection.has_expired():
                return connection, stale
            stale.append(connection)
        return httpcore.AsyncHTTPConnection(origin, ssl_context=self._ssl_context,
                                            keepalive_expiry=self._keepalive,
                                            network_backend=self._backend), stale

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        await self._slots.acquire()
        connection, stale = self._take(origin)
        try:
            for old in stale:
                await old.aclose()
            response = await connection.handle_async_request(request)
        except BaseException:
            self._slots.release()
            await connection.aclose()
            raise
        assert isinstance(response.stream, AsyncIterable)
        return httpcore.Response(status=response.status, headers=response.headers,
                                 content=_Released(response.stream, self, origin, connection),
                                 extensions=response.extensions)

    async def _release(self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection) -> None:
        self._slots.release()
        if connection.is_idle() and not connection.has_expired():
            self._idle.setdefault(_key(origin), []).append(connection)
        else:  # the body was not read to its end, or the server is closing it
            await connection.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


class _Released:
    """A response body whose closing hands its connection back to the pool (once)."""

    def __init__(self, stream: AsyncIterable[bytes], pool: LeanPool, origin: httpcore.Origin,
                 connection: httpcore.AsyncHTTPConnection) -> None:
        self._stream, self._pool, self._origin, self._connection = stream, pool, origin, connection
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            await self._pool._release(self._origin, self._connection)


class PoolTransport(httpx.AsyncBaseTransport):
    """httpx's transport over the pool we build ourselves (httpx's own does not take a
    network backend): requests in, responses out, httpcore's errors as httpx's."""

    def __init__(self, pool: LeanPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()
