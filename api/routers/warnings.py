"""Early warnings (CONTRACT §6): inspectors list their districts' open warnings and acknowledge them
with the action taken; the credit office sees all. Webhook subscriptions are the admin's. Every
request is audited by the observer middleware; out of scope answers like unknown (404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import Admin, Now, ServiceDep, WarningReader
from api.problems import Problem, problem_docs
from api.schemas import AcknowledgeIn, DeliveryOut, WarningOut, WebhookCreated, WebhookIn, WebhookOut
from riskengine.core.errors import ConflictError, FatalInputError, NotFoundError
from riskengine.core.store import Store

router = APIRouter(prefix="/v1", tags=["warnings"])


def _store(service: ServiceDep) -> Store:
    return service.store


@router.get(
    "/warnings",
    name="warning_list",
    response_model=list[WarningOut],
    summary="Early warnings of your districts (credit office: all), newest first",
    responses=problem_docs(401, 403),
)
async def list_warnings(
    request: Request,
    principal: WarningReader,
    service: ServiceDep,
    open_only: Annotated[bool, Query(alias="open", description="only warnings not yet acknowledged")] = True,
    district: Annotated[str | None, Query(max_length=20, description="one of your districts")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[WarningOut]:
    scope = principal.district_scope()
    if district is not None:
        scope = [district] if scope is None or district in scope else []
    frame = await run_in_threadpool(_store(service).stored_warnings, districts=scope, open_only=open_only)
    request.state.audit_detail = f"warnings={frame.height} open_only={open_only}"
    return [WarningOut(**row) for row in frame.head(limit).iter_rows(named=True)]


@router.post(
    "/warnings/{warning_id}/acknowledge",
    name="warning_acknowledge",
    response_model=WarningOut,
    summary="Acknowledge a warning with the action taken",
    responses=problem_docs(401, 403, 404, 409, 422),
)
async def acknowledge(
    request: Request,
    principal: WarningReader,
    service: ServiceDep,
    body: AcknowledgeIn,
    now: Now,
    warning_id: str,
) -> WarningOut:
    try:
        row = await run_in_threadpool(
            _store(service).acknowledge_warning,
            warning_id,
            principal.actor,
            body.action,
            now,
            districts=principal.district_scope(),
        )
    except NotFoundError:
        raise Problem(404, "no such warning") from None
    except ConflictError as exc:
        raise Problem(409, str(exc)) from None
    except FatalInputError as exc:
        raise Problem(422, str(exc)) from None
    request.state.audit_detail = f"acknowledged {warning_id}: {body.action[:200]}"
    return WarningOut(**row)


@router.get(
    "/admin/webhooks",
    name="webhook_list",
    response_model=list[WebhookOut],
    summary="Webhook subscriptions (never their secrets)",
    responses=problem_docs(401, 403),
)
async def list_webhooks(principal: Admin, service: ServiceDep) -> list[WebhookOut]:
    subs = await run_in_threadpool(_store(service).webhook_subscriptions)
    return [WebhookOut(**s.public()) for s in subs]


@router.post(
    "/admin/webhooks",
    name="webhook_create",
    response_model=WebhookCreated,
    status_code=201,
    summary="Subscribe a bureau system to new warnings (signed JSON POSTs)",
    responses=problem_docs(401, 403, 422),
)
async def create_webhook(
    request: Request, principal: Admin, service: ServiceDep, body: WebhookIn
) -> WebhookCreated:
    try:
        sub = await run_in_threadpool(_store(service).add_webhook, body.url, principal.actor)
    except FatalInputError as exc:
        raise Problem(422, str(exc)) from None
    request.state.audit_detail = f"subscribed {sub.subscription_id} {sub.url}"
    return WebhookCreated(**sub.public(), secret=sub.secret)


@router.delete(
    "/admin/webhooks/{subscription_id}",
    name="webhook_revoke",
    response_model=WebhookOut,
    summary="End a webhook subscription",
    responses=problem_docs(401, 403, 404),
)
async def revoke_webhook(
    request: Request, principal: Admin, service: ServiceDep, subscription_id: str
) -> WebhookOut:
    try:
        sub = await run_in_threadpool(_store(service).revoke_webhook, subscription_id)
    except NotFoundError:
        raise Problem(404, "no such webhook subscription") from None
    request.state.audit_detail = f"revoked {subscription_id}"
    return WebhookOut(**sub.public())


@router.get(
    "/admin/webhooks/{subscription_id}/deliveries",
    name="webhook_deliveries",
    response_model=list[DeliveryOut],
    summary="What was sent to a subscriber and what failed",
    responses=problem_docs(401, 403, 404),
)
async def deliveries(principal: Admin, service: ServiceDep, subscription_id: str) -> list[DeliveryOut]:
    store = _store(service)
    subs = await run_in_threadpool(store.webhook_subscriptions)
    if not any(s.subscription_id == subscription_id for s in subs):
        raise Problem(404, "no such webhook subscription")
    frame = await run_in_threadpool(store.webhook_deliveries, subscription_id)
    return [DeliveryOut(**row) for row in frame.iter_rows(named=True)]
