"""The warnings inbox (acknowledge with the action taken) and the monthly monitoring report.

Warnings come from the warning store (``riskengine warnings`` raises them, routed to districts); an
inspector sees and acknowledges those of their districts, the credit office all. The monitoring
report is the latest one ``riskengine monitor`` saved (``workflows.monitor.latest_path``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import AuthPrincipal, Now, ServiceDep
from api.problems import not_found
from api.ui.auth import page_requires
from api.ui.render import render
from riskengine.core.errors import ConflictError, FatalInputError, NotFoundError
from riskengine.core.store import Store
from riskengine.workflows.monitor import latest_path

router = APIRouter(prefix="/ui", include_in_schema=False)

WarningReader = Annotated[AuthPrincipal, Depends(page_requires("warnings"))]
MonitorReader = Annotated[AuthPrincipal, Depends(page_requires("monitoring"))]


def open_warnings_of(store: Store, user: AuthPrincipal, enterprise_id: str) -> list[dict[str, Any]]:
    """An enterprise's open warnings, for its page (the caller's scope was checked on the enterprise)."""
    return store.stored_warnings(districts=user.district_scope(), open_only=True,
                                 enterprise_id=enterprise_id).to_dicts()


@router.get("/warnings", name="ui_warnings")
def warnings_inbox(request: Request, user: WarningReader, service: ServiceDep,
                   show: Annotated[str, Query(pattern="^(open|all)$")] = "open",
                   page: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> Response:
    frame = service.store.stored_warnings(districts=user.district_scope(), open_only=show == "open")
    n_open = frame.filter(pl.col("acknowledged_at").is_null()).height
    size = service.settings.ui.page_size
    items = frame.slice((page - 1) * size, size).to_dicts()
    request.state.audit_detail = f"warnings show={show} rows={frame.height}"
    return render(request, "warnings.html", {
        "items": items, "total": frame.height, "open": n_open, "show": show, "page": page,
        "pages": max(1, -(-frame.height // size)), "error": None,
    })


@router.post("/warnings/{warning_id}/acknowledge", name="ui_acknowledge_warning")
def acknowledge(request: Request, warning_id: str, user: WarningReader, service: ServiceDep, now: Now,
                action: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Record who acknowledged the warning, when, and the action taken (required)."""
    store = service.store
    try:
        store.acknowledge_warning(warning_id, user.actor, action, now, districts=user.district_scope())
    except NotFoundError:  # unknown, or another district's: the same answer
        raise not_found("warning") from None
    except (ConflictError, FatalInputError) as exc:
        request.state.audit_detail = f"acknowledgement refused: {exc}"
        frame = store.stored_warnings(districts=user.district_scope(), open_only=True)
        return render(request, "warnings.html", {
            "items": frame.head(service.settings.ui.page_size).to_dicts(), "total": frame.height,
            "open": frame.height, "show": "open", "page": 1, "pages": 1, "error": str(exc),
        }, status=409 if isinstance(exc, ConflictError) else 422)
    request.state.audit_detail = f"acknowledged {warning_id}: {action.strip()}"
    return RedirectResponse("/ui/warnings", status_code=303)


@router.get("/monitoring", name="ui_monitoring")
def monitoring(request: Request, user: MonitorReader, service: ServiceDep) -> Response:
    path = latest_path(service.settings)
    report: dict[str, Any] | None = None
    if path.is_file():
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = None
    request.state.audit_detail = f"monitoring as_of={report.get('as_of') if report else None}"
    return render(request, "monitoring.html", {"report": report, "grades": ("A", "B", "C", "D")})
