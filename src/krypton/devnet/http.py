"""The devnet's HTTP face: the providers' API subsets plus its own control API.

    /toncenter/api/v3/...   TON Center API v3 subset   (toncenter_api.py)
    /trongrid/...           TronGrid v1 + java-tron HTTP subset (trongrid_api.py)
    /control/...            payments, blocks, reorgs, faults, state (control_api.py)

Point Krypton's TON Center client at <devnet>/toncenter/api/v3 and its TronGrid client at
<devnet>/trongrid: the same client and parser code as on mainnet then runs against it.
Provider faults (faults.py) are applied in front of each provider's routes, one armed
fault per request, before the request is routed.
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from krypton.devnet import control_api, toncenter_api, trongrid_api
from krypton.devnet.common import DevnetError
from krypton.devnet.devnet import Devnet
from krypton.devnet.faults import Faults, Provider
from krypton.devnet.requests import refused
from krypton.devnet.timer import Sleep

HANG_SECONDS = 3600.0  # a "timeout" fault holds the request this long: clients give up first


def create_devnet_app(devnet: Devnet, *, sleep: Sleep = asyncio.sleep, hang_seconds: float = HANG_SECONDS,
                      ton_show_pending: bool = False) -> Starlette:
    """The devnet's ASGI app. `sleep` serves latency and timeout faults (tests pass a fake one);
    ton_show_pending=True also lists TON transactions not yet in a masterchain block."""
    def gated(provider: Provider, app: ASGIApp) -> ASGIApp:
        return _FaultGate(app, provider, devnet.faults, sleep, hang_seconds)

    toncenter = Router(routes=toncenter_api.routes(devnet, show_pending=ton_show_pending))
    trongrid = Router(routes=trongrid_api.routes(devnet))
    return Starlette(
        routes=[
            Mount("/toncenter/api/v3", app=gated("toncenter", toncenter)),
            Mount("/trongrid", app=gated("trongrid", trongrid)),
            Mount("/control", routes=control_api.routes(devnet)),
        ],
        exception_handlers={DevnetError: refused},
    )


class _FaultGate:
    """Applies the next armed fault of one provider to each request."""

    def __init__(self, app: ASGIApp, provider: Provider, faults: Faults, sleep: Sleep,
                 hang_seconds: float) -> None:
        self._app, self._provider, self._faults = app, provider, faults
        self._sleep, self._hang = sleep, hang_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self._faults.take(self._provider) if scope["type"] == "http" else None
        response: Response | None = None
        if fault is not None and fault.kind == "latency":
            await self._sleep((fault.latency_ms or 0) / 1000)
        elif fault is not None and fault.kind == "timeout":
            await self._sleep(self._hang)
            response = JSONResponse({"error": "devnet fault: the provider did not answer in time"},
                                    status_code=504)
        elif fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            status = fault.status or 500
            message = "Ratelimit exceeded" if status == 429 else "devnet fault: provider error"
            response = JSONResponse({"error": message, "code": status}, status_code=status, headers=headers)
        if response is None:
            await self._app(scope, receive, send)
        else:
            await response(scope, receive, send)
