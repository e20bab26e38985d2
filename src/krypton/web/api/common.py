"""Shared pieces of the API routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from krypton.app.deps import Deps

Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")]
After = Annotated[str | None, Query(max_length=64, description="Id of the last item of the previous page.")]


def deps_of(request: Request) -> Deps:
    return request.app.state.deps  # type: ignore[no-any-return]


def json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def page(items: list[dict[str, Any]], has_more: bool) -> JSONResponse:
    return json({"object": "list", "data": items, "has_more": has_more})
