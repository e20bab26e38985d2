"""The OpenAPI document as a client generator and /docs need it: how each operation
authenticates (and with which scope), the house error shape on every error response, and no
framework internals (FastAPI's own HTTPValidationError never leaves the server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from krypton.web import auth

API_KEY = "ApiKey"
OPERATOR_TOKEN = "OperatorToken"
SESSION = "Session"
SECURITY_SCHEMES = {
    API_KEY: {"type": "http", "scheme": "bearer", "bearerFormat": "kr_…",
              "description": "A merchant API key (`krypton apikey create`), sent as "
                             "`Authorization: Bearer kr_…`. Each operation names the scope it needs."},
    OPERATOR_TOKEN: {"type": "http", "scheme": "bearer",
                     "description": "The operator token (KRYPTON_OPERATOR_TOKEN), not a merchant key."},
    SESSION: {"type": "apiKey", "in": "cookie", "name": "krypton_session",
              "description": "A signed-in dashboard user's session (POST /api/v1/session); "
                             "send X-CSRF-Token (the krypton_csrf cookie) on unsafe methods. "
                             "Each such operation names the permission its role needs."},
}
# FastAPI's description of its own validation errors: Krypton answers with ErrorOut instead.
_FRAMEWORK_SCHEMAS = ("HTTPValidationError", "ValidationError")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: `invalid_request`, `not_found`, "
                      "`unauthorized`, `insufficient_scope`, `rate_limited`, …")
    message: str = Field(description="One sentence for people: what is wrong and what to do.")
    field: str | None = Field(description="The request field at fault, if one is.")


class ErrorOut(BaseModel):
    error: ErrorDetail = Field(description="What went wrong.")


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}


# Which error responses an operation documents, by what it is.
_INVALID = _error("The request is invalid; the message says what to fix and `field` where.")
_UNAUTHORIZED = _error("No valid credentials: the Authorization header is missing or wrong.")
_FORBIDDEN = _error("The API key lacks the scope this operation needs.")
_NO_PERMISSION = _error("The signed-in user's role lacks the permission this operation needs, "
                        "or an API key was sent where only a dashboard session may act.")
_NOT_FOUND = _error("No such object (or it belongs to another merchant).")
_LIMITED = _error("Too many requests; retry after the seconds in the Retry-After header.")


def _errors(path: str, security: list[str]) -> dict[str, dict[str, Any]]:
    responses = {"422": _INVALID, "429": _LIMITED}
    if security:
        responses["401"] = _UNAUTHORIZED
    if API_KEY in security or SESSION in security:
        responses["403"] = _FORBIDDEN if API_KEY in security else _NO_PERMISSION
    if "{" in path:
        responses["404"] = _NOT_FOUND
    return responses


@dataclass(frozen=True)
class _Security:
    schemes: list[str]  # any one of them will do
    scopes: list[str]
    permissions: list[str]


def _security(app: FastAPI) -> dict[tuple[str, str], _Security]:
    """(path, method) -> how each API operation authenticates and what it needs."""
    found: dict[tuple[str, str], _Security] = {}
    for route in auth.api_routes(app.routes):
        scopes = [scope.value for scope in auth.scopes_of(route)]
        permissions = [permission.value for permission in auth.permissions_of(route)]
        tags = getattr(route.original_route, "tags", None) or []
        if scopes:
            schemes = [API_KEY]
        elif "operator" in tags:  # the operator's token, or an operator session
            schemes = [OPERATOR_TOKEN, SESSION] if permissions else [OPERATOR_TOKEN]
        else:
            schemes = [SESSION] if permissions else []
        for method in route.methods or ():
            found[(route.path or "", method.lower())] = _Security(schemes, scopes, permissions)
    return found


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of `app`, with security and the error shape filled in."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _FRAMEWORK_SCHEMAS:
        schemas.pop(name, None)
    error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error.pop("$defs"), ErrorOut=error)
    doc["components"]["securitySchemes"] = SECURITY_SCHEMES
    security = _security(app)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            needs = security.get((path, method), _Security([], [], []))
            operation["security"] = [{scheme: []} for scheme in needs.schemes]
            if needs.scopes:
                needed = ", ".join(f"`{s}`" for s in needs.scopes)
                operation["description"] = (operation.get("description", "")
                                            + f"\n\nRequires an API key with the scope {needed}.").strip()
            elif needs.permissions:
                needed = ", ".join(f"`{p}`" for p in needs.permissions)
                who = "the operator token, or a dashboard session" if OPERATOR_TOKEN in needs.schemes \
                    else "a dashboard session (never an API key)"
                operation["description"] = (operation.get("description", "") + f"\n\nRequires "
                                            f"{who} whose role has the permission {needed}.").strip()
            responses = operation.setdefault("responses", {})
            for status, response in _errors(path, needs.schemes).items():
                responses[status] = response
    return doc


def install(app: FastAPI) -> None:
    """Serve `document(app)`, built once on first request (routes are fixed by then)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override point
