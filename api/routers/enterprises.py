"""One enterprise: its served grade, the explanation, the history, and credit-office overrides
(recorded and withdrawn)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import EnterpriseId, ExplanationReader, GradeReader, Now, Overrider, ServiceDep, SnapshotDep
from api.problems import Problem, not_found, problem_docs
from api.schemas import (
    CreditRecordRead,
    EnterpriseGrade,
    Explanation,
    Frequency,
    History,
    HistoryItem,
    OverrideIn,
    OverrideOut,
    OverrideRecord,
    WithdrawIn,
)
from api.state import Service, Snapshot
from models.grading import HARD_RULES
from riskengine.core.errors import NotFoundError
from riskengine.core.records import served_grade
from riskengine.core.store import Override
from riskengine.core.store.authorizations import credit_record_reads
from riskengine.workflows.evidence import empty_evidence, lake_evidence
from riskengine.workflows.explain import assemble

router = APIRouter(prefix="/v1/enterprises", tags=["enterprises"])

LANGUAGES = ("zh", "en")


def grade_view(row: dict[str, Any], override: Override | None, snapshot: Snapshot,
               disputed: bool = False) -> EnterpriseGrade:
    """The served grade: the override's grade while one is in force, the engine's grades beside it;
    ``disputed`` while an objection against the enterprise is open."""
    grade: Any = served_grade(row["grade"], override)
    ratio, minimum = snapshot.frequency(row["sector"], grade)
    return EnterpriseGrade(
        enterprise_id=row["enterprise_id"], name=row["name"], district=row["district"], sector=row["sector"],
        as_of=row["as_of"], grade=grade, scored_grade=row["grade"], model_grade=row["model_grade"],
        rule=row["rule"], score=row["score"], probability=row["probability"],
        frequency=Frequency(ratio=ratio, min_per_year=minimum), model_version=row["model_version"],
        override=(OverrideOut(**{k: getattr(override, k) for k in OverrideOut.model_fields})
                  if override else None),
        disputed=disputed,
    )


def scoped_row(snapshot: Snapshot, principal: Any, enterprise_id: str) -> dict[str, Any]:
    """The enterprise's row if it exists and is in the caller's scope; the same 404 otherwise."""
    row = snapshot.row(enterprise_id)
    if row is None or not principal.sees(row["district"], row["sector"]):
        raise not_found("graded enterprise")
    return row


def record_override(service: Service, principal: Any, row: dict[str, Any], grade: str, reason: str,
                    expires_on: date, now: datetime) -> tuple[Override, str]:
    """Record a credit-office override of a scoped enterprise's grade; returns it and the audit
    detail. 422 without a reason or with an expiry not in (today, today + max_override_days]. The
    API and the pages both call this."""
    today = now.date()
    reason = reason.strip()
    if not reason:
        raise Problem(422, "reason: an override needs a reason")
    longest = service.settings.service.max_override_days
    if not today < expires_on <= today + timedelta(days=longest):
        raise Problem(422, f"expires_on must be after today ({today}) and at most {longest} days ahead; "
                           f"got {expires_on}")
    override = service.overrides.add(row["enterprise_id"], grade, reason, expires_on, principal.actor, now)
    return override, f"override {row['grade']}->{grade} until {expires_on}: {reason}"


def withdraw_override_of(service: Service, principal: Any, row: dict[str, Any], override_id: int,
                         reason: str, now: datetime) -> str:
    """End one override of a scoped enterprise now; returns the audit detail. 422 without a reason,
    404 for an override unknown or of another enterprise, 409 (ConflictError) if no longer in force.
    The API and the pages both call this."""
    reason = reason.strip()
    if not reason:
        raise Problem(422, "reason: a withdrawal needs a reason")
    enterprise_id = row["enterprise_id"]
    before = service.overrides.active(enterprise_id, now)
    try:
        withdrawn = service.overrides.withdraw(enterprise_id, override_id, principal.actor, reason, now)
    except NotFoundError:  # the uniform not-found body; a ConflictError is answered 409 by the handler
        raise not_found("override") from None
    after = service.overrides.active(enterprise_id, now)
    return (f"withdraw override {override_id} ({withdrawn.grade}): served "
            f"{before.grade if before else row['grade']}->{after.grade if after else row['grade']}: {reason}")


def pick_language(accept_language: str | None) -> str:
    """zh or en from an Accept-Language header (highest q wins; Chinese by default, for officers)."""
    best, best_q = "zh", -1.0
    for part in (accept_language or "").split(","):
        pieces = [p.strip() for p in part.split(";")]
        tag = pieces[0].lower().split("-")[0]
        q = 1.0
        for p in pieces[1:]:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if tag in LANGUAGES and q > best_q:
            best, best_q = tag, q
    return best


@router.get("/{enterprise_id}", name="read_grade", response_model=EnterpriseGrade,
            summary="The served grade of an enterprise",
            responses=problem_docs(401, 403, 404, 422))
async def get_enterprise(
    request: Request, principal: GradeReader, enterprise_id: EnterpriseId, snapshot: SnapshotDep,
    service: ServiceDep, now: Now,
) -> EnterpriseGrade:
    """Grade, score, probability, supervision frequency, as_of, model version and any override in force."""
    row = scoped_row(snapshot, principal, enterprise_id)
    view = grade_view(row, service.overrides.active(enterprise_id, now), snapshot,
                      enterprise_id in service.disputed)
    service.metrics.grades_served.labels("enterprise").inc()
    request.state.audit_detail = f"grade={view.grade}"
    return view


@router.get("/{enterprise_id}/explanation", name="read_explanation",
            response_model=Explanation,
            summary="Why an enterprise has its grade", responses=problem_docs(401, 403, 404, 422))
async def get_explanation(
    request: Request, response: Response, principal: ExplanationReader, enterprise_id: EnterpriseId,
    snapshot: SnapshotDep, service: ServiceDep,
    accept_language: Annotated[str | None, Header(description="zh (default) or en")] = None,
) -> Explanation:
    """Own-record reasons first, each with the lake records behind it (when the service knows the
    lake), then hard rules and the baseline of similar enterprises; texts in both languages and in the
    requested one (CONTRACT §3, the same structure as ``riskengine explain --format json``)."""
    row = scoped_row(snapshot, principal, enterprise_id)
    lang = pick_language(accept_language)
    body = await run_in_threadpool(explanation_body, service, row)
    for reason in body["reasons"]:
        reason["text"] = reason[f"text_{lang}"] or reason["text_zh"] or ""
    rule_text = None
    if row["rule"]:
        rule_text = (next((r["text"] for r in body["reasons"] if r["code"] == row["rule"]), None)
                     or _rule_text(row["rule"], lang))
    response.headers["Content-Language"] = lang
    request.state.audit_detail = f"grade={row['grade']} lang={lang}"
    return Explanation.model_validate({**body, "language": lang, "rule_text": rule_text})


def explanation_body(service: Service, row: dict[str, Any]) -> dict[str, Any]:
    """CONTRACT §3's explanation of a scoped enterprise's served row, with the lake records behind
    each own-record reason when the service knows the lake. The API and the pages both call this."""
    lake = service.settings.service.lake_path
    found = lake_evidence(lake, row["as_of"], [row["enterprise_id"]]) if lake else None
    return assemble(row, list(row["reasons"] or []), found if found is not None else empty_evidence())


def _rule_text(rule: str, lang: str) -> str | None:
    for r in HARD_RULES:
        if r.id == rule:
            return r.text_zh if lang == "zh" else r.text_en
    return None


@router.get("/{enterprise_id}/history", name="read_history",
            response_model=History, summary="Grades over past as_of dates",
            responses=problem_docs(401, 403, 404, 422, 503))
async def get_history(
    request: Request, principal: GradeReader, enterprise_id: EnterpriseId, snapshot: SnapshotDep,
    service: ServiceDep,
) -> History:
    """Every stored grade of the enterprise, oldest first (the store keeps each scored as_of), every
    credit-office override with its withdrawal, if any, and which finance partner read its credit
    record and when (an enterprise has a right to know who looked)."""
    scope = snapshot.scope_of(enterprise_id)  # from memory: unknown and out of scope answer alike
    if scope is None or not principal.sees(*scope):
        raise not_found("graded enterprise")
    history = await run_in_threadpool(snapshot.history, service.store, enterprise_id)
    service.metrics.grades_served.labels("history").inc(history.height)
    request.state.audit_detail = f"rows={history.height}"
    overrides = [OverrideRecord(**{k: getattr(o, k) for k in OverrideRecord.model_fields})
                 for o in service.overrides.of(enterprise_id)]
    await run_in_threadpool(service.audit.flush)  # reads audited a moment ago are listed too
    reads = await run_in_threadpool(credit_record_reads, service.store, enterprise_id)
    return History(enterprise_id=enterprise_id, items=[HistoryItem(**r) for r in history.select(
        list(HistoryItem.model_fields)).to_dicts()], overrides=overrides,
        credit_record_reads=[CreditRecordRead(**r) for r in reads])


@router.post("/{enterprise_id}/override", name="override_grade",
             response_model=EnterpriseGrade, status_code=201,
             summary="Override an enterprise's grade (credit office)",
             responses=problem_docs(401, 403, 404, 413, 422, 503))
def post_override(
    request: Request, principal: Overrider, enterprise_id: EnterpriseId, body: OverrideIn,
    snapshot: SnapshotDep, service: ServiceDep, now: Now,
) -> EnterpriseGrade:
    """Set the served grade until ``expires_on`` (reason required); the engine's grades stay visible."""
    row = scoped_row(snapshot, principal, enterprise_id)
    override, request.state.audit_detail = record_override(service, principal, row, body.grade, body.reason,
                                                           body.expires_on, now)
    return grade_view(row, override, snapshot, enterprise_id in service.disputed)


@router.post("/{enterprise_id}/override/{override_id}/withdraw", name="withdraw_override",
             response_model=EnterpriseGrade,
             summary="Withdraw a grade override before it expires (credit office)",
             responses=problem_docs(401, 403, 404, 409, 413, 422, 503))
def withdraw_override(
    request: Request, principal: Overrider, enterprise_id: EnterpriseId,
    override_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="the override's id, as returned "
                                     "when it was recorded and listed in the history")],
    body: WithdrawIn, snapshot: SnapshotDep, service: ServiceDep, now: Now,
) -> EnterpriseGrade:
    """End an override now (reason required) and return the grade served from now on: the engine's,
    or an older override still in force. The override and its withdrawal (who, when, why) stay in
    the history. 404 for an unknown override or one of another enterprise; 409 if it was already
    withdrawn or has expired.

    A ``POST .../withdraw`` action rather than ``DELETE .../override/{id}`` with a body: a DELETE
    body has no defined semantics (RFC 9110 §9.3.5) and clients and proxies may drop it (httpx's
    ``delete()`` takes none), yet the reason is required; and nothing is deleted — the override is
    kept with its withdrawal."""
    if not body.reason.strip():
        raise Problem(422, "reason: a withdrawal needs a reason")
    row = scoped_row(snapshot, principal, enterprise_id)
    request.state.audit_detail = withdraw_override_of(service, principal, row, override_id, body.reason, now)
    return grade_view(row, service.overrides.active(enterprise_id, now), snapshot,
                      enterprise_id in service.disputed)
