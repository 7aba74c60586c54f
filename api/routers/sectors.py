"""Listing a sector's graded enterprises, for pilot-sector partners (cursor pagination)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Query, Request

from api.deps import GradeReader, Now, ServiceDep, SnapshotDep
from api.problems import Problem, not_found, problem_docs
from api.schemas import EnterpriseSummary, Frequency, SectorPage

router = APIRouter(prefix="/v1/sectors", tags=["sectors"])


def encode_cursor(enterprise_id: str) -> str:
    return base64.urlsafe_b64encode(enterprise_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = None
    if not value or encode_cursor(value) != cursor:
        raise Problem(422, "cursor: not a cursor returned by this endpoint")
    return value


@router.get("/{sector}/enterprises", name="list_sector",
            response_model=SectorPage, summary="A sector's graded enterprises",
            responses=problem_docs(401, 403, 404, 422))
def list_sector(
    request: Request,
    principal: GradeReader,
    sector: str,
    snapshot: SnapshotDep,
    service: ServiceDep,
    now: Now,
    grade: Annotated[Literal["A", "B", "C", "D"] | None, Query(description="served grade")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SectorPage:
    """Enterprises of ``sector`` by id (inspectors see those in their districts), ``limit`` per page;
    pass ``next_cursor`` back as ``cursor`` for the next page."""
    if principal.role == "sector" and sector != principal.sector:
        raise not_found("sector")
    rows = snapshot.sector_rows(sector)
    if rows.height == 0 or snapshot.as_of is None:
        raise not_found("sector")
    if principal.role == "inspector":
        rows = rows.filter(pl.col("district").is_in(sorted(principal.districts)))
    if cursor is not None:
        rows = rows.filter(pl.col("enterprise_id") > decode_cursor(cursor))
    rows = service.overrides.served(rows, now)
    if grade is not None:
        rows = rows.filter(pl.col("grade") == grade)
    page = rows.head(limit + 1)
    more = page.height > limit
    page = page.head(limit)
    items = []
    columns = ("enterprise_id", "name", "district", "sector", "grade", "score")
    for r in page.select(columns).iter_rows(named=True):
        ratio, minimum = snapshot.frequency(r["sector"], r["grade"])
        items.append(EnterpriseSummary(**r, frequency=Frequency(ratio=ratio, min_per_year=minimum)))
    service.metrics.grades_served.labels("sector").inc(len(items))
    request.state.audit_detail = f"rows={len(items)}"
    return SectorPage(sector=sector, as_of=snapshot.as_of, items=items,
                      next_cursor=encode_cursor(items[-1].enterprise_id) if more and items else None)
