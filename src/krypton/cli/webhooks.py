"""`krypton webhooks ...`: see endpoints and deliveries, and receive signed webhooks locally."""

from __future__ import annotations

import json
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import typer
from rich.markup import escape

from krypton.app import webhooks as use
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.server import DEMO_MERCHANT
from krypton.cli.support import out
from krypton.domain import webhooks as wh
from krypton.domain.webhooks import Delivery, DeliveryStatus, Endpoint

app = typer.Typer(help="Webhook endpoints, their deliveries, and a local receiver.",
                  no_args_is_help=True)
LISTEN_PATH = "/webhooks"


@app.command("endpoints")
def endpoints() -> None:
    """Every merchant's webhook endpoints, with why any is disabled."""
    async def work(c: Container) -> list[Endpoint]:
        async with c.deps.uow(write=False) as uow:
            return await uow.webhooks.all_endpoints()
    found = support.run(work)
    if not found:
        out.print("No webhook endpoints.")
        return
    table = support.table("endpoint", "merchant", "url", "events", "enabled", "failing since")
    for e in found:
        table.add_row(e.id, e.merchant_id, e.url, ", ".join(e.events),
                      "yes" if e.enabled else f"no: {e.disabled_reason or ''}",
                      e.health.failing_since.isoformat() if e.health.failing_since else "")
    out.print(table)


@app.command("deliveries")
def deliveries(
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint (whe_...).")] = None,
    status: Annotated[DeliveryStatus | None, typer.Option(help="Only deliveries in this state.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=1000)] = 50,
) -> None:
    """Recent deliveries: what was sent where, how the attempts went, when the next is due."""
    async def work(c: Container) -> list[Delivery]:
        async with c.deps.uow(write=False) as uow:
            if endpoint is not None:
                if await uow.webhooks.endpoint(endpoint) is None:
                    raise support.fail(f"No webhook endpoint '{endpoint}'; `krypton webhooks "
                                       "endpoints` lists them.")
                ids = [endpoint]
            else:
                ids = [e.id for e in await uow.webhooks.all_endpoints()]
            found: list[Delivery] = []
            for endpoint_id in ids:
                page, _ = await uow.webhooks.deliveries_page(
                    endpoint_id, limit=limit, starting_after=None, status=status.value if status else None)
                found.extend(page)
        return sorted(found, key=lambda d: (d.created_at, d.id), reverse=True)[:limit]
    found = support.run(work)
    if not found:
        out.print("No deliveries.")
        return
    table = support.table("delivery", "endpoint", "event", "status", "attempts", "last answer",
                          "next attempt")
    for d in found:
        answer = str(d.last_status) if d.last_status is not None else (d.last_error or "")
        table.add_row(d.id, d.endpoint_id, d.event_type, d.status.value, str(d.attempts), answer,
                      d.next_attempt_at.isoformat() if d.next_attempt_at else "")
    out.print(table)


def _verify_and_print(secret: str, headers: dict[str, str], body: bytes) -> int:
    """Check one received delivery and print it; the HTTP status to answer."""
    try:
        wh.verify(secret, headers, body, int(time.time()))
    except wh.InvalidSignature as exc:
        out.print(f"[red]✗ refused[/red] {escape(headers.get('webhook-id', '?'))}: {escape(str(exc))}")
        return 400
    payload = json.loads(body)
    obj = payload.get("data", {}).get("object", {})
    detail = " ".join(f"{k}={obj[k]}" for k in ("id", "status", "amount", "amount_paid", "asset")
                      if isinstance(obj, dict) and obj.get(k) is not None)
    out.print(f"[green]✓ verified[/green] [bold]{escape(payload.get('type', '?'))}[/bold] "
              f"{escape(detail)}  (webhook-id {escape(headers.get('webhook-id', ''))})", highlight=False)
    return 200


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _Receiver(ThreadingHTTPServer):
    secret = ""  # set once the endpoint is registered, before serving starts


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        status = _verify_and_print(self.server.secret, {k.lower(): v for k, v in self.headers.items()},
                                   body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _bind(port: int) -> _Receiver:
    """The receiver's socket, taken before anything is registered: a port in use is a
    sentence, and no endpoint is left behind."""
    try:
        return _Receiver(("127.0.0.1", port), _Handler)
    except OSError as exc:
        raise support.fail(f"Cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose "
                           "another --port.") from None


def _serve(server: _Receiver, secret: str) -> None:
    server.secret = secret
    # Ctrl-C and a plain kill both stop it the same way (and remove the temporary endpoint),
    # also when started in the background, where a shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


async def _merchant_for_listen(c: Container, merchant: str | None) -> str:
    async with c.deps.uow(write=False) as uow:
        known = await uow.merchants.list()
    if merchant is not None:
        if not any(m.id == merchant for m in known):
            raise support.fail(f"No merchant '{merchant}'; `krypton merchant list` lists them.")
        return merchant
    if len(known) == 1:
        return known[0].id
    demo = [m for m in known if m.name == DEMO_MERCHANT]
    if demo:
        return demo[0].id
    raise support.fail("Which merchant's events? Give --merchant mer_... (`krypton merchant list`).")


@app.command("listen")
def listen(
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).", min=1, max=65535)] = 8787,
    merchant: Annotated[str | None, typer.Option(
        help="Register a temporary endpoint for this merchant (default: the only merchant, or "
        "the demo's).")] = None,
    secret: Annotated[str | None, typer.Option(
        help="Only listen, verifying with this secret (whsec_...), for an endpoint you registered "
        "yourself at http://127.0.0.1:PORT/webhooks.")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the temporary endpoint when you stop.")] = False,
) -> None:
    """Receive webhooks on this machine, check each signature and print the event: registers a
    temporary endpoint (http://127.0.0.1:PORT/webhooks, every event) unless --secret is given,
    and removes it on Ctrl-C. The server sending them must run with
    KRYPTON_WEBHOOKS_ALLOW_LOOPBACK=1, and so must this command to register the endpoint."""
    url = f"http://127.0.0.1:{port}{LISTEN_PATH}"
    if secret is not None:
        try:
            wh.secret_key(secret)
        except ValueError:
            raise support.fail("--secret must be the endpoint's whsec_... signing secret.") from None
        server = _bind(port)
        out.print(f"Listening on {url}; verifying with the secret given. Ctrl-C stops.")
        _serve(server, secret)
        return

    async def register(c: Container) -> tuple[Endpoint, str]:
        merchant_id = await _merchant_for_listen(c, merchant)
        return await use.create_endpoint(c.deps, c.webhook_kit(), merchant_id, url, [wh.ALL_EVENTS],
                                         description="krypton webhooks listen")
    server = _bind(port)
    try:
        endpoint, signing = support.run(register)
    except BaseException:
        server.server_close()
        raise
    out.print(f"Endpoint [bold]{endpoint.id}[/bold] for {endpoint.merchant_id} → {url}")
    out.print(f"Signing secret: [bold green]{signing}[/bold green]")
    out.print("Waiting for events (create or pay an invoice); Ctrl-C stops.")
    try:
        _serve(server, signing)
    finally:
        if not keep:
            support.run(lambda c: use.delete_endpoint(c.deps, endpoint.merchant_id, endpoint.id))
            out.print(f"Endpoint {endpoint.id} removed.")
