"""Rendering a page: Jinja2 templates with every value escaped, and a Content-Security-Policy
whose only script allowance is this response's nonce and Krypton's own files."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent.parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def policy(nonce: str, *, wallets: bool = False) -> str:
    """Scripts: ours and the nonce'd; styles: ours; images: ours and data: (QR codes are
    served SVGs). With TON Connect (`wallets`), the wallet list's icons and the wallets'
    bridges are other origins, over https and wss only."""
    connect = "'self' https: wss:" if wallets else "'self'"
    images = "'self' data: https:" if wallets else "'self' data:"
    return (f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
            f"img-src {images}; connect-src {connect}; font-src 'self'; manifest-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def page(template: str, context: dict[str, Any], *, status: int = 200, wallets: bool = False,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = _env.get_template(template).render(**context, nonce=nonce)
    return HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": policy(nonce, wallets=wallets),
        "Cache-Control": "no-store", **(headers or {})})
