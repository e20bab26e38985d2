"""/api/v1/webhook-endpoints: where a merchant's events are POSTed, and the delivery log."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from krypton.app import webhooks as use
from krypton.domain.errors import NotFound
from krypton.domain.scopes import Scope
from krypton.web.api import schemas as s
from krypton.web.api.common import After, Limit, deps_of, json, page
from krypton.web.auth import require
from krypton.web.principal import Principal

router = APIRouter(prefix="/webhook-endpoints", tags=["webhooks"])
Write = Depends(require(Scope.WEBHOOKS_WRITE))


def _kit(request: Request) -> use.Kit:
    return request.app.state.container.webhook_kit()  # type: ignore[no-any-return]


@router.post("", status_code=201, response_model=s.WebhookEndpointWithSecret,
             summary="Add a webhook endpoint (its signing secret is shown once)")
async def create(body: s.WebhookEndpointCreate, request: Request, who: Principal = Write) -> JSONResponse:
    endpoint, secret = await use.create_endpoint(
        deps_of(request), _kit(request), who.merchant_id, body.url, body.events, body.description,
        body.enabled)
    return json(s.endpoint_with_secret_body(endpoint, secret=secret), 201)


@router.get("", response_model=s.listing(s.WebhookEndpointOut),
            summary="List webhook endpoints, newest first")
async def list_(request: Request, who: Principal = Write, limit: Limit = 20,
                starting_after: After = None) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        items, more = await uow.webhooks.endpoints_page(who.merchant_id, limit=limit,
                                                        starting_after=starting_after)
    return page([s.endpoint_body(e) for e in items], more)


@router.get("/{endpoint_id}", response_model=s.WebhookEndpointOut, summary="Retrieve a webhook endpoint")
async def get(endpoint_id: str, request: Request, who: Principal = Write) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        endpoint = await use.owned_endpoint(uow, who.merchant_id, endpoint_id)
    return json(s.endpoint_body(endpoint))


@router.patch("/{endpoint_id}", response_model=s.WebhookEndpointOut, summary="Change a webhook endpoint")
async def update(endpoint_id: str, body: s.WebhookEndpointUpdate, request: Request,
                 who: Principal = Write) -> JSONResponse:
    endpoint = await use.update_endpoint(
        deps_of(request), _kit(request), who.merchant_id, endpoint_id, url=body.url,
        event_types=body.events, description=body.description, enabled=body.enabled,
        clear_description="description" in body.model_fields_set and body.description is None)
    return json(s.endpoint_body(endpoint))


@router.delete("/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint and its delivery log")
async def delete(endpoint_id: str, request: Request, who: Principal = Write) -> Response:
    await use.delete_endpoint(deps_of(request), who.merchant_id, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", response_model=s.WebhookEndpointWithSecret,
             summary="Replace the signing secret; the old one signs too for a while")
async def rotate_secret(endpoint_id: str, request: Request, who: Principal = Write,
                        body: s.SecretRotation | None = None) -> JSONResponse:
    keep = timedelta(seconds=(body or s.SecretRotation()).expires_in)
    endpoint, secret = await use.rotate_secret(deps_of(request), _kit(request), who.merchant_id,
                                               endpoint_id, keep)
    return json(s.endpoint_with_secret_body(endpoint, secret=secret))


@router.post("/{endpoint_id}/test", status_code=202, response_model=s.WebhookDeliveryOut,
             summary="Send a webhook.ping event to this endpoint")
async def test(endpoint_id: str, request: Request, who: Principal = Write) -> JSONResponse:
    delivery = await use.send_test(deps_of(request), who.merchant_id, endpoint_id)
    return json(s.delivery_body(delivery), 202)


@router.get("/{endpoint_id}/deliveries", response_model=s.listing(s.WebhookDeliveryOut),
            summary="The endpoint's deliveries, newest first")
async def deliveries(endpoint_id: str, request: Request, who: Principal = Write, limit: Limit = 20,
                     starting_after: After = None,
                     status: Annotated[Literal["pending", "succeeded", "failed"] | None,
                                       Query(description="Only deliveries in this state.")] = None,
                     ) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        await use.owned_endpoint(uow, who.merchant_id, endpoint_id)
        items, more = await uow.webhooks.deliveries_page(endpoint_id, limit=limit,
                                                         starting_after=starting_after, status=status)
    return page([s.delivery_body(d) for d in items], more)


@router.get("/{endpoint_id}/deliveries/{delivery_id}", response_model=s.WebhookDeliveryDetailOut,
            summary="One delivery: the request sent and every attempt's answer")
async def delivery(endpoint_id: str, delivery_id: str, request: Request,
                   who: Principal = Write) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        await use.owned_endpoint(uow, who.merchant_id, endpoint_id)
        found = await uow.webhooks.delivery(delivery_id)
        if found is None or found.endpoint_id != endpoint_id:
            raise NotFound(f"No delivery '{delivery_id}' for this endpoint.", field="delivery_id")
        attempts = await uow.webhooks.attempts(delivery_id)
    return json(s.delivery_detail_body(found, attempts))


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202,
             response_model=s.WebhookDeliveryOut, summary="Send a delivery again now")
async def redeliver(endpoint_id: str, delivery_id: str, request: Request,
                    who: Principal = Write) -> JSONResponse:
    found = await use.redeliver(deps_of(request), who.merchant_id, endpoint_id, delivery_id)
    return json(s.delivery_body(found), 202)
