"""Error reports to Sentry, opt-in (KRYPTON_SENTRY_DSN): what went wrong and where, with the
request id that ties it to the log lines, and nothing a payer or merchant sent.

Errors are reported where Krypton handles them: a crash answered 500 (web/errors.py) and a
background step that failed (workers/loops.py). The SDK is told not to read bodies, cookies,
source lines or local variables (a frame's locals hold the API key, as the log module
found), and every report passes `scrub` before it leaves: the request keeps its method and
route only, and every string left anywhere in the report goes through the log redaction
(keys, bearer tokens, passwords in URLs, secret-named fields).
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.types import Event

from krypton.config import Settings
from krypton.web.logs import REQUEST_ID, redact_value

# What stays of a request: enough to find the route, nothing the caller sent.
KEPT_REQUEST_KEYS = ("method",)


def configure(settings: Settings, *, release: str | None = None, **options: Any) -> bool:
    """Start reporting when a DSN is set; True if it was."""
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(), environment=settings.network,
        release=release, send_default_pii=False, include_local_variables=False,
        include_source_context=False,
        max_request_body_size="never", before_send=scrub, before_send_transaction=scrub,
        traces_sample_rate=0.0,
        # Errors are captured where they are handled (a crash answered 500, a failed
        # background step); log lines are neither events nor breadcrumbs.
        integrations=[LoggingIntegration(level=None, event_level=None)], **options)
    return True


def scrub(event: Event, _hint: dict[str, Any]) -> Event:
    request_id = REQUEST_ID.get()
    if request_id:
        event.setdefault("tags", {})["request_id"] = request_id
    request = event.get("request")
    if isinstance(request, dict):
        event["request"] = {k: request[k] for k in KEPT_REQUEST_KEYS if k in request}
        route = event.get("transaction")
        if isinstance(route, str):
            event["request"]["url"] = route  # the route's template, not the path with its ids
    event.pop("user", None)
    crumbs = event.get("breadcrumbs")
    for breadcrumb in crumbs.get("values", []) if isinstance(crumbs, dict) else []:
        breadcrumb.pop("data", None)
    scrubbed: Event = redact_value(event)
    return scrubbed



