"""The credit office's cases (CONTRACT section 5): open, step, documents, list, show, overview.

The credit office does the case work and sees everything. Inspectors and sector partners may learn
that a case exists on an enterprise in their scope — its kind, status and clock — never its
statement, documents or eligibility; out of scope, a case answers 404 like one that does not exist.
A step its status does not allow answers 409 with the case's ``current_status``. Every request is
audited by the observer; every step is also audited in the store with the step itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import CaseOfficer, CaseViewer, Now, ServiceDep
from api.problems import Problem, not_found, problem_docs
from api.schemas import CaseDocumentsIn, CaseOpenIn, CaseStepIn
from api.state import Service
from riskengine.core.errors import CaseStateError, NotFoundError, UsageError
from riskengine.workflows import cases

router = APIRouter(prefix="/v1/cases", tags=["cases"])


def _lake(service: Service) -> Any:
    lake = service.settings.service.lake_path
    if lake is None:
        raise Problem(503, "case work needs the lake: start the service with `riskengine serve --lake LAKE`")
    return lake


def _after_change(service: Service, case: cases.Case) -> None:
    """Serve the change at once: disputes and gauges; a new grade after a decision with an effect."""
    service.refresh_cases()
    if case.effect_state is not None:
        service.reload()


@router.get("", name="list_cases", summary="The case queue (only cases in your scope)",
            responses=problem_docs(401, 403, 422))
def list_cases(
    principal: CaseViewer, service: ServiceDep, now: Now, request: Request,
    kind: Annotated[str | None, Query(pattern="^(objection|repair)$")] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    overdue: bool = False,
    district: Annotated[str | None, Query(max_length=12)] = None,
) -> list[dict[str, Any]]:
    today = now.date()
    where = cases.CaseFilter(kind=kind, status=status, overdue=overdue, district=district)
    try:
        found = cases.list_cases(service.settings, where, today)
    except UsageError as exc:
        raise Problem(422, str(exc)) from None
    visible = [c for c in found if principal.sees(c.district, c.sector)]
    request.state.audit_detail = f"cases={len(visible)}"
    return [cases.case_view(c, today, documents=principal.has("cases")) for c in visible]


@router.get("/overview", name="case_overview", summary="Open cases by kind and step, overdue, median days",
            responses=problem_docs(401, 403))
def case_overview(principal: CaseOfficer, service: ServiceDep, now: Now) -> dict[str, Any]:
    today = now.date()
    view = cases.overview(cases.list_cases(service.settings, cases.CaseFilter(), today), today)
    service.metrics.set_cases(view)
    return view


@router.get("/{case_id}", name="read_case", summary="One case: its clock; its papers for the credit office",
            responses=problem_docs(401, 403, 404))
def read_case(case_id: str, principal: CaseViewer, service: ServiceDep, now: Now) -> dict[str, Any]:
    try:
        case = cases.case_store(service.settings).get(case_id)
    except NotFoundError:
        raise not_found("case") from None
    if not principal.sees(case.district, case.sector):
        raise not_found("case")
    return cases.case_view(case, now.date(), documents=principal.has("cases"))


@router.post("", name="open_case", status_code=201, summary="Open an objection or a credit repair",
             responses=problem_docs(401, 403, 404, 422, 503))
def open_case(body: CaseOpenIn, principal: CaseOfficer, service: ServiceDep, now: Now,
              request: Request) -> dict[str, Any]:
    lake, today = _lake(service), now.date()
    try:
        if body.kind == "objection":
            named = body.record_id is not None
            if named == body.grade or named != (body.record_table is not None):
                raise Problem(422, "an objection names exactly one of record_table + record_id, or grade")
            record = (body.record_table, body.record_id) if named else None
            case = cases.open_objection(
                service.settings, lake, body.enterprise_id, received_on=body.received_on,
                record=record, statement=body.statement or "", officer=principal.actor,  # type: ignore[arg-type]
                today=today)
        else:
            case = cases.open_repair(
                service.settings, lake, body.enterprise_id, received_on=body.received_on,
                penalty=body.penalty, list_entry=body.list_entry, documents=body.documents,
                officer=principal.actor, statement=body.statement, today=today)
    except NotFoundError as exc:
        raise Problem(404, str(exc)) from None
    except UsageError as exc:
        raise Problem(422, str(exc)) from None
    _after_change(service, case)
    request.state.audit_detail = f"{case.case_id} {case.kind} {case.enterprise_id}"
    return cases.case_view(case, today)


@router.post("/{case_id}/steps", name="take_case_step", summary="Take the case's next step (reason required)",
             responses=problem_docs(401, 403, 404, 409, 422, 503))
def take_step(case_id: str, body: CaseStepIn, principal: CaseOfficer, service: ServiceDep, now: Now,
              request: Request) -> dict[str, Any]:
    lake, today = _lake(service), now.date()
    try:
        case = cases.take_step(service.settings, lake, case_id, body.step, reason=body.reason,
                               officer=principal.actor, on=body.on, today=today,
                               regrader=cases.champion_regrader(service.settings))
    except CaseStateError as exc:
        raise Problem(409, str(exc), current_status=exc.current_status) from None
    except NotFoundError:
        raise not_found("case") from None
    except UsageError as exc:
        raise Problem(422, str(exc)) from None
    _after_change(service, case)
    request.state.audit_detail = f"{case_id} {body.step} -> {case.status}: {body.reason}"
    return cases.case_view(case, today)


@router.post("/{case_id}/documents", name="receive_case_documents",
             summary="Record documents of a repair application as received",
             responses=problem_docs(401, 403, 404, 409, 422, 503))
def receive_documents(case_id: str, body: CaseDocumentsIn, principal: CaseOfficer, service: ServiceDep,
                      now: Now, request: Request) -> dict[str, Any]:
    lake = _lake(service)
    try:
        case = cases.receive_documents(service.settings, lake, case_id, body.documents, principal.actor)
    except NotFoundError:
        raise not_found("case") from None
    except UsageError as exc:
        raise Problem(422, str(exc)) from None
    request.state.audit_detail = f"{case_id} documents {','.join(body.documents)}"
    return cases.case_view(case, now.date())
