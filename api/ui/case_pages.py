"""The credit office's cases in the browser: the queue (overdue first, with their clocks), one
case's page with its steps and decision forms, and opening an objection or a repair from an
enterprise's page. Every action calls ``riskengine.workflows.cases`` as the CLI does (the same
transitions, deadlines, eligibility, records and audit entries)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from api.deps import AuthPrincipal, Now, ServiceDep, SnapshotDep
from api.problems import Problem, not_found
from api.routers.cases import _after_change, _lake
from api.routers.enterprises import scoped_row
from api.state import Service
from api.ui.auth import page_requires
from api.ui.render import render
from riskengine.core.errors import ConflictError, NotFoundError, RiskEngineError, UsageError
from riskengine.core.store.cases import DECISIONS, KINDS, OPEN_STATUSES, Case
from riskengine.workflows import cases as workflow

router = APIRouter(prefix="/ui", include_in_schema=False)

CaseOfficer = Annotated[AuthPrincipal, Depends(page_requires("cases"))]
STEP_LABELS = {"accept": ("受理", "accept"), "refuse": ("不予受理", "refuse"),
               "uphold": ("异议成立", "uphold"), "reject": ("异议不成立", "reject"),
               "approve": ("准予修复", "approve"), "deny": ("不予修复", "deny")}
KIND_LABELS = {"objection": ("异议", "objection"), "repair": ("信用修复", "credit repair")}
STATUS_LABELS = {"received": ("已收件", "received"), "accepted": ("已受理", "accepted"),
                 "refused": ("不予受理", "refused"), "upheld": ("异议成立", "upheld"),
                 "rejected": ("异议不成立", "rejected"), "approved": ("准予修复", "approved"),
                 "denied": ("不予修复", "denied")}


def queue_order(cases: list[Case], today: date) -> list[Case]:
    """Overdue first, then open cases by due day, then decided ones, newest decision first."""
    def key(c: Case) -> tuple[int, int, str]:
        if c.overdue(today):
            return (0, c.due_on.toordinal() if c.due_on else 0, c.case_id)
        if c.open:
            return (1, c.due_on.toordinal() if c.due_on else 10**7, c.case_id)
        return (2, -(c.decided_on or c.received_on).toordinal(), c.case_id)

    return sorted(cases, key=key)


def _labels() -> dict[str, Any]:
    return {"step_labels": STEP_LABELS, "kind_labels": KIND_LABELS, "status_labels": STATUS_LABELS}


@router.get("/cases", name="ui_cases")
def case_queue(request: Request, user: CaseOfficer, service: ServiceDep, now: Now,
               kind: Annotated[str | None, Query(max_length=16)] = None,
               status: Annotated[str | None, Query(max_length=16)] = None,
               overdue: Annotated[bool, Query()] = False) -> Response:
    today = now.date()
    where = workflow.CaseFilter(kind=kind or None, status=status or None, overdue=overdue)
    try:
        found = workflow.list_cases(service.settings, where, today)
    except UsageError as exc:
        raise Problem(422, str(exc)) from None
    everything = workflow.list_cases(service.settings, workflow.CaseFilter(), today)
    items = [workflow.case_view(c, today, documents=False) for c in queue_order(found, today)]
    request.state.audit_detail = f"cases rows={len(items)}"
    return render(request, "cases.html", {
        "items": items, "overview": workflow.overview(everything, today), "kinds": KINDS,
        "statuses": (*OPEN_STATUSES, "refused", *DECISIONS),
        "filters": {"kind": kind, "status": status, "overdue": overdue}, **_labels(),
    })


def _case_or_404(service: Service, case_id: str) -> Case:
    try:
        return workflow.case_store(service.settings).get(case_id)
    except NotFoundError:
        raise not_found("case") from None


def _case_page(request: Request, service: Service, case: Case, today: date, error: str | None = None,
               status: int = 200) -> Response:
    view = workflow.case_view(case, today)
    return render(request, "case.html", {"case": view, "error": error, "today": today,
                                         "documents": workflow.DOCUMENTS, **_labels()}, status=status)


@router.get("/cases/{case_id}", name="ui_case")
def case_page(request: Request, case_id: str, user: CaseOfficer, service: ServiceDep, now: Now) -> Response:
    case = _case_or_404(service, case_id)
    request.state.audit_detail = f"case {case_id} {case.status}"
    return _case_page(request, service, case, now.date())


@router.post("/cases/{case_id}/step", name="ui_case_step")
async def case_step(request: Request, case_id: str, user: CaseOfficer, service: ServiceDep, now: Now,
                    step: Annotated[str, Form(max_length=16)],
                    reason: Annotated[str, Form(max_length=2000)] = "",
                    on: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Take one step (accept, refuse, uphold, reject, approve, deny) with its reason and day."""
    case = await run_in_threadpool(_case_or_404, service, case_id)
    try:
        day = date.fromisoformat(on) if on.strip() else now.date()
    except ValueError:
        return _refused(request, service, case, now, f"the day must be YYYY-MM-DD; got {on!r}", 422)
    try:
        done = await run_in_threadpool(
            lambda: workflow.take_step(service.settings, _lake(service), case_id, step, reason=reason,
                                       officer=user.actor, on=day, today=now.date(),
                                       regrader=workflow.champion_regrader(service.settings)))
        await run_in_threadpool(_after_change, service, done)
    except (UsageError, ConflictError) as exc:
        return _refused(request, service, case, now, str(exc), 409 if isinstance(exc, ConflictError) else 422)
    request.state.audit_detail = f"case {case_id} {step}: {case.status}->{done.status}: {reason.strip()}"
    return RedirectResponse(f"/ui/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/documents", name="ui_case_documents")
def case_documents(request: Request, case_id: str, user: CaseOfficer, service: ServiceDep, now: Now,
                   code: Annotated[list[str] | None, Form()] = None) -> Response:
    case = _case_or_404(service, case_id)
    try:
        workflow.receive_documents(service.settings, _lake(service), case_id, code or [], user.actor)
    except (UsageError, ConflictError) as exc:
        return _refused(request, service, case, now, str(exc), 409 if isinstance(exc, ConflictError) else 422)
    request.state.audit_detail = f"case {case_id} documents {','.join(code or [])}"
    return RedirectResponse(f"/ui/cases/{case_id}", status_code=303)


def _refused(request: Request, service: Service, case: Case, now: datetime, message: str,
             status: int) -> Response:
    request.state.audit_detail = f"case {case.case_id} refused: {message}"
    return _case_page(request, service, case, now.date(), error=message, status=status)


@router.post("/enterprises/{enterprise_id}/cases", name="ui_case_open")
def open_case(request: Request, enterprise_id: str, user: CaseOfficer, service: ServiceDep,
              snapshot: SnapshotDep, now: Now, kind: Annotated[str, Form(max_length=16)],
              received_on: Annotated[str, Form(max_length=10)] = "",
              statement: Annotated[str, Form(max_length=4000)] = "",
              subject: Annotated[str, Form(max_length=200)] = "",
              code: Annotated[list[str] | None, Form()] = None) -> Response:
    """Open an objection (against the grade, or a record given as ``table:id``) or a credit-repair
    application (``penalties:CASE_ID`` or ``list_entries:ENTRY_ID``) for an enterprise in scope."""
    scoped_row(snapshot, user, enterprise_id)
    lake = _lake(service)
    try:
        day = date.fromisoformat(received_on) if received_on.strip() else now.date()
        table, _, record_id = subject.strip().partition(":")
        if kind == "objection":
            case = workflow.open_objection(
                service.settings, lake, enterprise_id, received_on=day,
                record=(table, record_id) if subject.strip() else None, statement=statement,
                officer=user.actor, today=now.date())
        elif kind == "repair":
            if table not in ("penalties", "list_entries") or not record_id:
                raise UsageError("a repair names a penalty (penalties:CASE_ID) or a list entry "
                                 "(list_entries:ENTRY_ID)")
            case = workflow.open_repair(
                service.settings, lake, enterprise_id, received_on=day,
                penalty=record_id if table == "penalties" else None,
                list_entry=record_id if table == "list_entries" else None, documents=code or [],
                officer=user.actor, statement=statement or None, today=now.date())
        else:
            raise UsageError(f"kind must be objection or repair; got {kind!r}")
    except ValueError as exc:
        raise Problem(422, f"received_on must be a date YYYY-MM-DD: {exc}") from None
    except NotFoundError as exc:
        raise Problem(422, str(exc)) from None
    except RiskEngineError as exc:
        raise Problem(exc.http_status if exc.http_status < 500 else 422, str(exc)) from None
    _after_change(service, case)
    request.state.audit_detail = f"opened {case.case_id} ({kind}) for {enterprise_id}"
    return RedirectResponse(f"/ui/cases/{case.case_id}", status_code=303)


def cases_of(service: Service, user: AuthPrincipal, enterprise_id: str, today: date) -> list[dict[str, Any]]:
    """An enterprise's cases for its page: the credit office sees them whole, others only that a case
    exists, its kind, status and clock (never the papers)."""
    try:
        found = workflow.case_store(service.settings).all(enterprise_id=enterprise_id)
    except RiskEngineError:
        return []
    return [workflow.case_view(c, today, documents=user.has("cases")) for c in found]
