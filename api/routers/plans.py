"""The monthly inspection plan, per district: JSON pages, or the whole list as CSV."""

from __future__ import annotations

from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Header, Query, Request, Response

from api.deps import AuthPrincipal, PlanReader, ServiceDep, SnapshotDep
from api.problems import Problem, problem_docs
from api.schemas import PlanPage
from api.state import Snapshot
from riskengine.core import exports
from riskengine.core.errors import NotFoundError
from riskengine.supervision.plan import meta_in_scope

router = APIRouter(prefix="/v1", tags=["plans"])


def _json_safe(frame: pl.DataFrame) -> list[dict[str, Any]]:
    floats = [n for n, t in frame.schema.items() if t in (pl.Float32, pl.Float64)]
    if floats:  # NaN is not JSON
        frame = frame.with_columns([pl.col(c).fill_nan(None) for c in floats])
    return frame.to_dicts()


def scoped_plan_rows(rows: pl.DataFrame, principal: AuthPrincipal, district: str | None) -> pl.DataFrame:
    """The plan rows the caller may see, of one district or of all theirs (404 for a district out of
    scope). The API and the pages both call this."""
    if "district" in rows.columns:
        if district is not None:
            if not principal.sees(district, None):
                raise Problem(404, "no plan for this district is available to you")
            rows = rows.filter(pl.col("district") == district)
        elif principal.role == "inspector":
            rows = rows.filter(pl.col("district").is_in(sorted(principal.districts)))
    elif principal.role != "credit_office":
        rows = rows.clear()  # a plan without districts cannot be scoped
    return rows


def scoped_plan_meta(meta: dict[str, Any], principal: AuthPrincipal, rows: pl.DataFrame,
                     snapshot: Snapshot) -> dict[str, Any]:
    """A plan's meta as the caller may see it: the credit office all of it, others only their
    districts' figures and carried-over ids among enterprises they may see. The API and the pages
    both call this."""
    if principal.role == "credit_office":
        return meta
    visible = snapshot.grades.filter(pl.col("district").is_in(sorted(principal.districts)))
    listed = rows.get_column("enterprise_id").to_list() if "enterprise_id" in rows.columns else []
    return meta_in_scope(meta, principal.districts,
                         {*visible.get_column("enterprise_id").to_list(), *listed})


@router.get(
    "/inspection-plan",
    name="read_plan",
    response_model=PlanPage,
    summary="The inspection plan of a period, by district",
    responses={**problem_docs(401, 403, 404, 422),
               200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "a page of the plan (JSON) or, with Accept: text/csv, every row"}},
)
def get_inspection_plan(
    request: Request,
    principal: PlanReader,
    snapshot: SnapshotDep,
    service: ServiceDep,
    district: Annotated[str | None, Query(max_length=64, description="default: every district you may see")]
    = None,
    period: Annotated[str | None, Query(max_length=32, description="e.g. 2026-01; default: the latest")]
    = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int | None, Query(ge=1)] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Plan rows by district, then rank. JSON is paginated (``page``, ``page_size``); ``Accept:
    text/csv`` returns every matching row as CSV (UTF-8 with BOM, so Excel shows the Chinese text)."""
    size = page_size or service.settings.service.page_size
    if size > service.settings.service.max_page_size:
        raise Problem(422, f"page_size must be at most {service.settings.service.max_page_size}; got {size}")
    try:
        plan = snapshot.plan(service.store, period)
    except NotFoundError:
        raise Problem(404, "no plan for this period is available to you") from None
    rows = scoped_plan_rows(plan.rows, principal, district)
    meta = scoped_plan_meta(plan.meta, principal, rows, snapshot)
    request.state.audit_detail = f"period={plan.period} rows={rows.height}"
    if accept and "text/csv" in accept.lower():
        body = exports.csv_bytes(exports.flat(rows, reasons="zh"))
        name = f"plan-{plan.period}{'-' + district if district else ''}.csv"
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    start = (page - 1) * size
    return PlanPage(
        period=plan.period, as_of=plan.as_of, district=district, total=rows.height, page=page,
        page_size=size, items=_json_safe(rows.slice(start, size)), meta=meta,
    )
