"""An enterprise's credit record for finance partners (质量信用金融+) and the authorizations behind it.

A ``finance`` key reads ``GET /v1/enterprises/{id}/credit-record`` only while an authorization of
that enterprise for its partner (the key's name) is in force; without one the answer is the same
404 as for an enterprise that does not exist, so a partner cannot probe who is in the lake. The
credit office records and revokes authorizations and may read any record. Every request is audited
by the middleware; a read names the authorization it relied on, and the enterprise's history lists
which partner read its record and when.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import AuthPrincipal, EnterpriseId, Now, ServiceDep, SnapshotDep, requires
from api.problems import Problem, not_found, problem_docs
from api.schemas import AuthorizationIn, AuthorizationOut, CreditRecord, RevokeIn
from api.state import Service
from riskengine.core.errors import NotFoundError
from riskengine.core.store.authorizations import READ_ACTION, Authorization, Authorizations
from riskengine.workflows.credit_record import enterprise_exists, read_credit_record

router = APIRouter(prefix="/v1/enterprises", tags=["credit record"])

CreditReader = Annotated[AuthPrincipal, Depends(requires("credit_record"))]
AuthorizationOffice = Annotated[AuthPrincipal, Depends(requires("authorizations"))]


def _out(a: Authorization, now: Any) -> AuthorizationOut:
    return AuthorizationOut(**{**a.__dict__, "scope": list(a.scope)}, in_force=a.in_force(now))


def _known(service: Service, snapshot: Any, enterprise_id: str) -> bool:
    """Whether the enterprise exists: graded, or held by the service's lake."""
    if snapshot.row(enterprise_id) is not None:
        return True
    lake = service.settings.service.lake_path
    return lake is not None and enterprise_exists(lake, enterprise_id)


@router.post(
    "/{enterprise_id}/authorizations",
    name="record_authorization",
    response_model=AuthorizationOut,
    status_code=201,
    summary="Record an enterprise's authorization for a finance partner (credit office)",
    responses=problem_docs(401, 403, 404, 409, 422),
)
def post_authorization(
    request: Request,
    principal: AuthorizationOffice,
    enterprise_id: EnterpriseId,
    body: AuthorizationIn,
    service: ServiceDep,
    snapshot: SnapshotDep,
    now: Now,
) -> AuthorizationOut:
    """The enterprise's signed consent: partner, scope, granted on, expires on, consent reference."""
    if not _known(service, snapshot, enterprise_id):
        raise not_found("enterprise")
    if body.expires_on <= body.granted_on:
        raise Problem(422, f"expires_on ({body.expires_on}) must be after granted_on ({body.granted_on})")
    record = Authorizations(service.store).add(
        enterprise_id,
        body.partner,
        tuple(body.scope),
        body.granted_on,
        body.expires_on,
        body.consent_reference,
        principal.actor,
        now,
        body.authorization_id,
    )
    request.state.audit_detail = (
        f"authorization={record.authorization_id} partner={record.partner!r} "
        f"{record.granted_on}..{record.expires_on} consent={record.consent_reference!r}"
    )
    return _out(record, now)


@router.get(
    "/{enterprise_id}/authorizations",
    name="list_authorizations",
    response_model=list[AuthorizationOut],
    summary="An enterprise's authorizations, revoked and expired ones too (credit office)",
    responses=problem_docs(401, 403, 422),
)
def get_authorizations(
    principal: AuthorizationOffice, enterprise_id: EnterpriseId, service: ServiceDep, now: Now
) -> list[AuthorizationOut]:
    return [_out(a, now) for a in Authorizations(service.store).of(enterprise_id)]


@router.post(
    "/{enterprise_id}/authorizations/{authorization_id}/revoke",
    name="revoke_authorization",
    response_model=AuthorizationOut,
    summary="Revoke an authorization now (credit office; reason required)",
    responses=problem_docs(401, 403, 404, 409, 422),
)
def revoke_authorization(
    request: Request,
    principal: AuthorizationOffice,
    enterprise_id: EnterpriseId,
    authorization_id: Annotated[str, Path(max_length=64)],
    body: RevokeIn,
    service: ServiceDep,
    now: Now,
) -> AuthorizationOut:
    try:
        record = Authorizations(service.store).revoke(
            enterprise_id, authorization_id, principal.actor, body.reason, now
        )
    except NotFoundError:
        raise not_found("authorization") from None
    request.state.audit_detail = f"authorization={authorization_id} revoked: {body.reason.strip()}"
    return _out(record, now)


@router.get(
    "/{enterprise_id}/credit-record",
    name=READ_ACTION,
    response_model=CreditRecord,
    summary="An enterprise's credit record (finance partners under its authorization)",
    responses=problem_docs(401, 403, 404, 422, 503),
)
async def get_credit_record(
    request: Request,
    principal: CreditReader,
    enterprise_id: EnterpriseId,
    service: ServiceDep,
    snapshot: SnapshotDep,
    now: Now,
) -> CreditRecord:
    """Penalties within their influence period, lists, commitments kept and breached, approved repairs
    and a good-standing statement, as of today. A finance partner gets it only while the enterprise's
    authorization for it is in force; otherwise 404, exactly as for an unknown enterprise."""
    authorization = None
    if principal.role == "finance":
        authorization = await run_in_threadpool(
            Authorizations(service.store).in_force, enterprise_id, principal.name or "", "credit_record", now
        )
        if authorization is None:
            raise not_found("enterprise")
    lake = service.settings.service.lake_path
    if lake is None:
        raise Problem(
            503, "credit records are read from the lake: start the service with `serve --lake LAKE`"
        )
    record = await run_in_threadpool(read_credit_record, lake, enterprise_id, now.date())
    if record is None:
        raise not_found("enterprise")
    grade: Any = None
    if snapshot.policy.sharing.grade_to_finance:
        row = snapshot.row(enterprise_id)
        override = service.overrides.active(enterprise_id, now)
        grade = override.grade if override else (row["grade"] if row else None)
    request.state.audit_detail = (
        f"authorization={authorization.authorization_id}" if authorization else "credit office"
    )
    return CreditRecord(
        **record, grade=grade, authorization_id=authorization.authorization_id if authorization else None
    )
