"""What the devnet's own APIs (control, price fakes) share: reading a JSON object body and
answering a refused request in the house error shape."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from krypton.devnet.common import DevnetError, InvalidInput, MalformedBody


async def read_object(request: Request, allowed: set[str]) -> dict[str, Any]:
    """The body as a JSON object (empty: {}), with only `allowed` fields."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise MalformedBody("The request body is not valid JSON; send a JSON object.") from None
    if not isinstance(body, dict):
        raise MalformedBody("The request body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"{unknown[0]} is not a known field; use {', '.join(sorted(allowed))}.",
                           field=unknown[0])
    return body


def text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required.", field=name)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string.", field=name)
    return value


def refused(request: Request, exc: Exception) -> Response:
    """Starlette's handler for DevnetError: its status, code and sentence."""
    assert isinstance(exc, DevnetError)
    return JSONResponse({"error": {"code": exc.code, "message": exc.message, "field": exc.field}},
                        status_code=exc.status)
