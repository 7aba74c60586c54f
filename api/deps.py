"""Typed dependencies: the service, its current snapshot, the caller (``Principal``), the clock and
validated path parameters. Order inside a route matters and is always: authenticate (401), check the
role's right (403), validate input (422), look up within scope (404)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import polars as pl
from fastapi import Depends, Path, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from api.state import Service, Snapshot
from riskengine.core.ids import uscc_problem
from riskengine.core.keys import RIGHTS, key_id_of, token_matches
from riskengine.core.store import KeyRecord, utcnow

_bearer = HTTPBearer(auto_error=False, description="an API key from `riskengine keys create`")


# Dependencies are ``async def`` although they do not await: FastAPI would run plain ``def`` ones in
# the thread pool, one thread hop each per request.
async def get_service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_snapshot(service: ServiceDep) -> Snapshot:
    """The snapshot this request uses from start to end (a reload swaps in a new one for later requests)."""
    return service.snapshot


SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]


async def now() -> datetime:
    """The current UTC time (tests override this dependency to move the clock)."""
    return utcnow()


Now = Annotated[datetime, Depends(now)]


@dataclass(frozen=True)
class AuthPrincipal:
    """Who is calling: the key's id, holder, role and scope."""

    key_id: str
    name: str | None
    role: str
    districts: frozenset[str]
    sector: str | None

    @classmethod
    def from_record(cls, record: KeyRecord) -> AuthPrincipal:
        return cls(record.key_id, record.name, record.role, frozenset(record.districts), record.sector)

    @property
    def actor(self) -> str:
        return f"{self.key_id} ({self.name})" if self.name else self.key_id

    def has(self, right: str) -> bool:
        return right in RIGHTS.get(self.role, frozenset())

    def district_scope(self) -> list[str] | None:
        """The districts whose district-routed items (early warnings) this caller sees; None: all."""
        if self.role == "credit_office":
            return None
        if self.role == "inspector":
            return sorted(self.districts)
        return []

    def sees(self, district: str | None, sector: str | None) -> bool:
        """Whether an enterprise in ``district`` / ``sector`` is in this caller's scope."""
        if self.role == "credit_office":
            return True
        if self.role == "inspector":
            return district in self.districts
        if self.role == "sector":
            return sector is not None and sector == self.sector
        return False

    def scope_expr(self) -> pl.Expr:
        """``sees`` as a Polars filter over a frame with ``district`` and ``sector`` columns."""
        if self.role == "credit_office":
            return pl.lit(True)
        if self.role == "inspector":
            return pl.col("district").is_in(sorted(self.districts))
        if self.role == "sector" and self.sector is not None:
            return pl.col("sector") == self.sector
        return pl.lit(False)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="riskengine"'})


def _throttled(wait: int) -> Problem:
    return Problem(429, f"too many failed API keys; try again in {wait} s",
                   headers={"Retry-After": str(wait)})


def _refused(service: Service, address: str | None, key_id: str | None, detail: str) -> Problem:
    """401 for a failed key, or 429 once the address or key id has failed too often."""
    wait = service.throttle.failed(address, key_id)
    return _throttled(wait) if wait is not None else _unauthorized(detail)


async def verify_bearer(request: Request, service: Service, authorization: str | None) -> AuthPrincipal:
    """The caller named by an ``Authorization`` header value (401 without a valid, unrevoked key).

    Runs once per request: ``AuthBeforeBodyMiddleware`` calls it before a request body is read, and
    the ``authenticate`` dependency reuses its answer.
    """
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known  # type: ignore[no-any-return]
    address = request.client.host if request.client else None
    wait = service.throttle.address_wait(address)
    if wait is not None:
        raise _throttled(wait)
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("send an API key as 'Authorization: Bearer KEY'")
    key_id = key_id_of(token)
    if key_id is None:
        raise _refused(service, address, None, "the API key is malformed")
    request.state.claimed_key_id = key_id
    record = service.keys.get(key_id)
    if record is None:  # perhaps created by `riskengine keys create` since the last refresh
        record = await run_in_threadpool(service.keys.lookup_missing, key_id)
    if record is None or not token_matches(record, token) or not record.active:
        raise _refused(service, address, key_id, "the API key is unknown or revoked")
    principal = AuthPrincipal.from_record(record)
    request.state.principal = principal
    return principal


async def authenticate(
    request: Request,
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> AuthPrincipal:
    """The caller of a request with ``Authorization: Bearer KEY`` (401 without a valid, unrevoked key)."""
    return await verify_bearer(request, service, request.headers.get("authorization"))


Principal = Annotated[AuthPrincipal, Depends(authenticate)]


def requires(right: str) -> Callable[[AuthPrincipal], Awaitable[AuthPrincipal]]:
    """A dependency: the caller, if their role has ``right`` (else 403)."""

    async def check(principal: Principal) -> AuthPrincipal:
        if not principal.has(right):
            raise Problem(403, f"the role {principal.role!r} has no access to {right}")
        return principal

    check.__name__ = f"requires_{right}"
    return check


GradeReader = Annotated[AuthPrincipal, Depends(requires("grades"))]
ExplanationReader = Annotated[AuthPrincipal, Depends(requires("explanations"))]
PlanReader = Annotated[AuthPrincipal, Depends(requires("plans"))]
Overrider = Annotated[AuthPrincipal, Depends(requires("overrides"))]
WhatIf = Annotated[AuthPrincipal, Depends(requires("whatif"))]
Admin = Annotated[AuthPrincipal, Depends(requires("admin"))]
CaseOfficer = Annotated[AuthPrincipal, Depends(requires("cases"))]
CaseViewer = Annotated[AuthPrincipal, Depends(requires("case_existence"))]
WarningReader = Annotated[AuthPrincipal, Depends(requires("warnings"))]


def check_enterprise_id(service: Service, enterprise_id: str) -> str | None:
    """Why an enterprise id is malformed under the configured id scheme, or None."""
    if service.settings.id_scheme == "uscc":
        return uscc_problem(enterprise_id)
    return None if enterprise_id.strip() else "enterprise id must not be empty"


async def valid_enterprise_id(
    service: ServiceDep,
    enterprise_id: Annotated[str, Path(description="Unified Social Credit Code (18 characters)",
                                       max_length=64)],
) -> str:
    """The path's enterprise id, if well formed (422 with the reason otherwise)."""
    problem = check_enterprise_id(service, enterprise_id)
    if problem:
        raise Problem(422, problem)
    return enterprise_id


EnterpriseId = Annotated[str, Depends(valid_enterprise_id)]
