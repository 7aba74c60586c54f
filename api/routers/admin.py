"""Administration: reload the model and grades, and manage API keys (admin role only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import Admin, ServiceDep
from api.problems import Problem, problem_docs
from api.schemas import KeyCreated, KeyIn, KeyOut, ReloadOut
from riskengine.core.errors import NotFoundError, UsageError
from riskengine.core.keys import new_key, public_view

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reload", name="reload", response_model=ReloadOut,
             summary="Swap in the newly promoted model and latest grades",
             responses=problem_docs(401, 403, 503))
async def reload(request: Request, principal: Admin, service: ServiceDep) -> ReloadOut:
    """Builds the new state completely, then swaps it in at once: requests in flight finish on the old
    model and grades, later ones see the new; none fail."""
    snap = await run_in_threadpool(service.reload)
    request.state.audit_detail = f"as_of={snap.as_of} model={snap.model_version} grades={snap.grades.height}"
    return ReloadOut(as_of=snap.as_of, grades=snap.grades.height, model_version=snap.model_version,
                     loaded_at=snap.loaded_at)


@router.get("/keys", name="key_list",
            response_model=list[KeyOut], summary="API keys (never the keys themselves)",
            responses=problem_docs(401, 403))
def list_keys(principal: Admin, service: ServiceDep) -> list[KeyOut]:
    service.keys.refresh()
    return [KeyOut(**public_view(k)) for k in service.keys.all()]  # type: ignore[arg-type]


@router.post("/keys", name="key_create",
             response_model=KeyCreated, status_code=201, summary="Create an API key (shown once)",
             responses=problem_docs(401, 403, 413, 422))
def create_key(request: Request, principal: Admin, body: KeyIn, service: ServiceDep) -> KeyCreated:
    try:
        record, token = new_key(body.role, body.districts, body.sector, body.name)
    except UsageError as exc:
        raise Problem(422, str(exc)) from None
    service.keys.add(record)
    scope = ",".join(record.districts) or record.sector or "-"
    request.state.audit_detail = f"created key {record.key_id} role={record.role} scope={scope}"
    return KeyCreated(**public_view(record), key=token)  # type: ignore[arg-type]


@router.delete("/keys/{key_id}", name="key_revoke",
               response_model=KeyOut, summary="Revoke an API key",
               responses=problem_docs(401, 403, 404, 409))
def revoke_key(request: Request, principal: Admin, key_id: str, service: ServiceDep) -> KeyOut:
    try:
        record = service.keys.revoke(key_id)
    except NotFoundError:
        raise Problem(404, "no API key with this id") from None
    request.state.audit_detail = f"revoked key {record.key_id}"
    return KeyOut(**public_view(record))  # type: ignore[arg-type]
