"""/docs: Swagger UI from Krypton's own files, under a Content-Security-Policy.

FastAPI's page loads Swagger UI from a CDN and starts it with an inline script; a payment
server's pages should run only code it serves itself. The Swagger UI files come from the
`swagger-ui-bundle-v2` package; `static/docs.js` starts it. Only the files the page uses
are served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from krypton.web.errors import ApiError

ASSETS = "/docs/assets"
_OURS = Path(__file__).parent / "static"
# name -> file: the Swagger UI files the page needs, and the script that starts it.
FILES = {name: Path(str(swagger_ui_path)) / name
         for name in ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")}
FILES["docs.js"] = _OURS / "docs.js"
# Swagger UI sets inline style attributes and uses data: images in its CSS; scripts and
# connections only to this server, and no framing.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
          "base-uri 'none'; form-action 'none'")


def page(openapi_url: str, title: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/docs.js"></script>
</body>
</html>
"""


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve /docs and its files (create the app with `docs_url=None`)."""
    html = page(openapi_url, f"{app.title} API")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": POLICY})

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        path = FILES.get(name)
        if path is None:
            raise ApiError(404, "not_found", f"No docs file '{name}'.", field="name")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
