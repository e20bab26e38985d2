"""The OpenAPI document as a client generator and /docs need it: how each operation
authenticates (and with which scope), the house error shape on every error response, and no
framework internals (FastAPI's own HTTPValidationError never leaves the server)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from krypton.web import auth

API_KEY = "ApiKey"
OPERATOR_TOKEN = "OperatorToken"
SECURITY_SCHEMES = {
    API_KEY: {"type": "http", "scheme": "bearer", "bearerFormat": "kr_…",
              "description": "A merchant API key (`krypton apikey create`), sent as "
                             "`Authorization: Bearer kr_…`. Each operation names the scope it needs."},
    OPERATOR_TOKEN: {"type": "http", "scheme": "bearer",
                     "description": "The operator token (KRYPTON_OPERATOR_TOKEN), not a merchant key."},
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
_NOT_FOUND = _error("No such object (or it belongs to another merchant).")
_LIMITED = _error("Too many requests; retry after the seconds in the Retry-After header.")


def _errors(path: str, security: str | None) -> dict[str, dict[str, Any]]:
    responses = {"422": _INVALID, "429": _LIMITED}
    if security is not None:
        responses["401"] = _UNAUTHORIZED
    if security == API_KEY:
        responses["403"] = _FORBIDDEN
    if "{" in path:
        responses["404"] = _NOT_FOUND
    return responses


def _security(app: FastAPI) -> dict[tuple[str, str], tuple[str | None, list[str]]]:
    """(path, method) -> (the security scheme, the scopes) of each API operation."""
    found: dict[tuple[str, str], tuple[str | None, list[str]]] = {}
    for route in auth.api_routes(app.routes):
        scopes = [scope.value for scope in auth.scopes_of(route)]
        tags = getattr(route.original_route, "tags", None) or []
        scheme = API_KEY if scopes else OPERATOR_TOKEN if "operator" in tags else None
        for method in route.methods or ():
            found[(route.path or "", method.lower())] = (scheme, scopes)
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
            scheme, scopes = security.get((path, method), (None, []))
            operation["security"] = [{scheme: []}] if scheme else []
            if scopes:
                needed = ", ".join(f"`{s}`" for s in scopes)
                operation["description"] = (operation.get("description", "")
                                            + f"\n\nRequires an API key with the scope {needed}.").strip()
            responses = operation.setdefault("responses", {})
            for status, response in _errors(path, scheme).items():
                responses[status] = response
    return doc


def install(app: FastAPI) -> None:
    """Serve `document(app)`, built once on first request (routes are fixed by then)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override point
