"""The pages under /ui/: sign-in and sign-out, the inspection plan, search, an enterprise, its
explanation, overrides, and a sector partner's list.

Each page checks the session (``PageUser``), the role's right (as the API's ``requires``), then
reads through the same functions as the API's routers (``scoped_row``, ``scoped_plan_rows``,
``OverrideBook.served``, ``record_override``, ...), so scope and rules live in one place. Every request
is audited by the observer middleware like an API call (route name, path, status, key, detail).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from api.deps import AuthPrincipal, Now, ServiceDep, SnapshotDep, check_enterprise_id
from api.problems import Problem, not_found
from api.routers.enterprises import (
    _rule_text,
    explanation_body,
    grade_view,
    record_override,
    scoped_row,
    withdraw_override_of,
)
from api.routers.plans import scoped_plan_meta, scoped_plan_rows
from api.state import Service, Snapshot
from api.ui.auth import COOKIE, COOKIE_PATH, PageUser, page_requires, safe_next, sessions_of
from api.ui.case_pages import cases_of
from api.ui.render import LANG_COOKIE, LANGS, history_svg, language, render, waterfall_svg
from api.ui.watch_pages import open_warnings_of
from riskengine.core.contract import PILOT_SECTORS
from riskengine.core.errors import ConflictError, NotFoundError
from riskengine.lake.layout import scan_table
from riskengine.workflows.reports.excel import plan_excel_bytes

router = APIRouter(prefix="/ui", include_in_schema=False)

GradeViewer = Annotated[AuthPrincipal, Depends(page_requires("grades"))]
Explainer = Annotated[AuthPrincipal, Depends(page_requires("explanations"))]
PlanViewer = Annotated[AuthPrincipal, Depends(page_requires("plans"))]
Overrider = Annotated[AuthPrincipal, Depends(page_requires("overrides"))]

HOME = {"inspector": "/ui/plan", "credit_office": "/ui/cases", "sector": "/ui/sector"}
GRADE_CHOICES = ("A", "B", "C", "D")


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- signing in and out ------------------------------------------------------------------------


@router.get("/login", name="ui_login_form")
async def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return render(request, "login.html", {"next": safe_next(next) or "", "error": None})


@router.post("/login", name="ui_login")
async def login(request: Request, service: ServiceDep, now: Now,
                key: Annotated[str, Form(max_length=200)] = "",
                next: Annotated[str, Form(max_length=2000)] = "") -> Response:  # noqa: A002
    """Sign in with an API key: a new server-side session; the cookie holds only its random token."""
    book = sessions_of(request)
    record = await run_in_threadpool(book.key_for, key)
    if record is None:
        request.state.claimed_key_id = (key.strip().split("_") + ["", ""])[1][:8] or None
        request.state.audit_detail = "sign-in refused"
        return render(request, "login.html", {"next": safe_next(next) or "", "error": True}, status=401)
    old = request.cookies.get(COOKIE)
    if old:  # a new sign-in never continues an old session (no fixation)
        await run_in_threadpool(book.close, old, now)
    session, token = await run_in_threadpool(book.open, record, now)
    principal = AuthPrincipal.from_record(record)
    request.state.principal = principal
    request.state.audit_detail = f"signed in, session {session.short_id}"
    response = _see_other(safe_next(next) or HOME.get(principal.role, "/ui/"))
    ui = service.settings.ui
    response.set_cookie(COOKIE, token, max_age=int(ui.session_hours * 3600), path=COOKIE_PATH,
                        httponly=True, samesite="strict", secure=ui.cookie_secure)
    return response


@router.post("/logout", name="ui_logout")
async def logout(request: Request, service: ServiceDep, now: Now) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        ended = await run_in_threadpool(sessions_of(request).close, token, now)
        if ended is not None:
            key = service.keys.get(ended.key_id)
            if key is not None:
                request.state.principal = AuthPrincipal.from_record(key)
            request.state.audit_detail = f"signed out, session {ended.short_id}"
    response = _see_other("/ui/login")
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=service.settings.ui.cookie_secure)
    return response


@router.get("/lang/{lang}", name="ui_language")
async def switch_language(request: Request, lang: str, next: str | None = None) -> Response:  # noqa: A002
    """Remember the reader's language and go back to the page they were on."""
    response = _see_other(safe_next(next) or "/ui/")
    if lang in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path=COOKIE_PATH, samesite="strict")
    return response


@router.get("/", name="ui_home")
async def home(request: Request, user: PageUser) -> Response:
    if user.role in HOME:
        return _see_other(HOME[user.role])
    return render(request, "home.html", {})


# --- the inspection plan -------------------------------------------------------------------------


def _plan_view(service: Service, snapshot: Snapshot, user: AuthPrincipal, district: str | None,
               grade: str | None, stratum: str | None, status: str | None, period: str | None
               ) -> tuple[Any, pl.DataFrame, pl.DataFrame]:
    """The stored plan, the caller's rows of it, and those rows after the filters, by rank."""
    try:
        plan = snapshot.plan(service.store, period or None)
    except NotFoundError:
        raise Problem(404, "no plan for this period is available to you") from None
    rows = scoped_plan_rows(plan.rows, user, district or None)
    shown = rows
    for column, value in (("grade", grade), ("stratum", stratum), ("status", status)):
        if value and column in shown.columns:
            shown = shown.filter(pl.col(column) == value)
    order = [c for c in ("district", "rank") if c in shown.columns]
    return plan, rows, shown.sort(order) if order else shown


@router.get("/plan", name="ui_plan")
def plan_page(
    request: Request, user: PlanViewer, service: ServiceDep, snapshot: SnapshotDep,
    district: Annotated[str | None, Query(max_length=64)] = None,
    grade: Annotated[str | None, Query(max_length=1)] = None,
    stratum: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    period: Annotated[str | None, Query(max_length=32)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    plan, rows, shown = _plan_view(service, snapshot, user, district, grade, stratum, status, period)
    size = service.settings.ui.page_size
    pages = max(1, -(-shown.height // size))
    items = shown.slice((page - 1) * size, size).to_dicts()
    districts = sorted(rows["district"].unique().to_list()) if "district" in rows.columns else []
    query = {k: v for k, v in (("district", district), ("grade", grade), ("stratum", stratum),
                               ("status", status), ("period", period)) if v}
    request.state.audit_detail = f"period={plan.period} rows={shown.height}"
    return render(request, "plan.html", {
        "plan": plan, "items": items, "total": shown.height, "all_rows": rows.height, "page": page,
        "pages": pages, "districts": districts, "filters": query, "grades": GRADE_CHOICES,
        "periods": service.store.plan_periods(),
        "query": "&".join(f"{k}={v}" for k, v in query.items()),
    })


@router.get("/plan.xlsx", name="ui_plan_excel")
def plan_excel(
    request: Request, user: PlanViewer, service: ServiceDep, snapshot: SnapshotDep,
    district: Annotated[str | None, Query(max_length=64)] = None,
    grade: Annotated[str | None, Query(max_length=1)] = None,
    stratum: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    period: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The rows on screen (same filters) as the planner's workbook: a summary sheet, one per district."""
    plan, rows, shown = _plan_view(service, snapshot, user, district, grade, stratum, status, period)
    body = plan_excel_bytes(shown, scoped_plan_meta(plan.meta, user, rows, snapshot))
    request.state.audit_detail = f"period={plan.period} rows={shown.height} excel"
    name = f"plan-{plan.period}{'-' + district if district else ''}.xlsx"
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


# --- search, an enterprise, its explanation ------------------------------------------------------


@router.get("/search", name="ui_search")
def search(request: Request, user: Explainer, snapshot: SnapshotDep, service: ServiceDep, now: Now,
           q: Annotated[str, Query(max_length=100)] = "") -> Response:
    """Enterprises in the caller's scope whose USCC starts with, or whose name contains, ``q``."""
    text = q.strip()
    items: list[dict[str, Any]] = []
    total = 0
    if text:
        grades = snapshot.grades.filter(user.scope_expr())
        hits = grades.filter(pl.col("enterprise_id").str.starts_with(text.upper())
                             | pl.col("name").str.contains(text, literal=True))
        total = hits.height
        hits = service.overrides.served(hits.head(service.settings.ui.page_size), now)
        items = hits.select("enterprise_id", "name", "district", "sector", "grade", "score").to_dicts()
    request.state.audit_detail = f"q={text!r} hits={total}"
    return render(request, "search.html", {"q": text, "items": items, "total": total})


def _row(service: Service, snapshot: Snapshot, user: AuthPrincipal, enterprise_id: str) -> dict[str, Any]:
    problem = check_enterprise_id(service, enterprise_id)
    if problem:
        raise Problem(422, problem)
    return scoped_row(snapshot, user, enterprise_id)


def _lake_events(service: Service, enterprise_id: str) -> list[dict[str, Any]]:
    """Inspections and penalties of one enterprise, newest first (empty without a lake)."""
    lake = service.settings.service.lake_path
    if lake is None or not (lake / "enterprises").is_dir():
        return []
    events: list[dict[str, Any]] = []
    inspections = (scan_table(lake, "inspections").filter(pl.col("enterprise_id") == enterprise_id)
                   .select("inspection_id", "inspected_on", "kind", "outcome", "findings_critical").collect())
    for r in inspections.iter_rows(named=True):
        events.append({"day": r["inspected_on"], "what": "inspection", "id": r["inspection_id"],
                       "kind": r["kind"], "outcome": r["outcome"],
                       "bad": r["outcome"] == "fail" or (r["findings_critical"] or 0) > 0})
    penalties = (scan_table(lake, "penalties").filter(pl.col("enterprise_id") == enterprise_id)
                 .select("case_id", "decided_on", "severity", "fine_cny").collect())
    for r in penalties.iter_rows(named=True):
        events.append({"day": r["decided_on"], "what": "penalty", "id": r["case_id"],
                       "kind": r["severity"], "outcome": r["fine_cny"], "bad": r["severity"] != "minor"})
    return sorted(events, key=lambda e: (e["day"] or date.min, e["id"]), reverse=True)


def _enterprise_context(request: Request, row: dict[str, Any], user: AuthPrincipal, snapshot: Snapshot,
                        service: Service, now: datetime) -> dict[str, Any]:
    enterprise_id = row["enterprise_id"]
    view = grade_view(row, service.overrides.active(enterprise_id, now), snapshot)
    context: dict[str, Any] = {"row": row, "view": view, "full": user.has("explanations"),
                               "can_override": user.has("overrides"), "today": now.date(), "error": None}
    if context["full"]:
        lang = language(request)
        history = service.store.grade_history(enterprise_id)
        points = [(r["as_of"], r["grade"], r["score"]) for r in history.iter_rows(named=True)]
        context.update(
            history=points, history_chart=history_svg(points, lang),
            waterfall=waterfall_svg(row["reasons"] or [], lang),
            events=_lake_events(service, enterprise_id),
            overrides=list(reversed(service.overrides.of(enterprise_id))),
            longest=service.settings.service.max_override_days,
        )
    if user.has("warnings"):
        context["warnings"] = open_warnings_of(service.store, user, enterprise_id)
    if context["full"]:
        context["cases"] = cases_of(service, user, enterprise_id, now.date())
    return context


@router.get("/enterprises/{enterprise_id}", name="ui_enterprise")
def enterprise_page(request: Request, enterprise_id: str, user: GradeViewer, snapshot: SnapshotDep,
                    service: ServiceDep, now: Now) -> Response:
    """Grade, score and frequency for every role that reads grades; reasons, history, timeline and
    overrides for those who read explanations (a sector partner sees the grade only, as in the API)."""
    row = _row(service, snapshot, user, enterprise_id)
    context = _enterprise_context(request, row, user, snapshot, service, now)
    request.state.audit_detail = f"grade={context['view'].grade}"
    return render(request, "enterprise.html", context)


@router.get("/enterprises/{enterprise_id}/explanation", name="ui_explanation")
def explanation_page(request: Request, enterprise_id: str, user: Explainer, snapshot: SnapshotDep,
                     service: ServiceDep) -> Response:
    """CONTRACT §3's explanation (the API's): own-record reasons first with the records behind them,
    then hard rules, associated enterprises and the baseline; the contributions as a waterfall."""
    row = _row(service, snapshot, user, enterprise_id)
    body = explanation_body(service, row)
    rule_text = _rule_text(row["rule"], language(request)) if row["rule"] else None
    request.state.audit_detail = f"grade={row['grade']}"
    return render(request, "explanation.html", {
        "row": row, "body": body, "reasons": body["reasons"], "rule_text": rule_text,
        "waterfall": waterfall_svg(body["reasons"], language(request)),
    })


# --- overrides -----------------------------------------------------------------------------------


@router.post("/enterprises/{enterprise_id}/override", name="ui_override")
def override(request: Request, enterprise_id: str, user: Overrider, snapshot: SnapshotDep,
             service: ServiceDep, now: Now, grade: Annotated[str, Form()],
             reason: Annotated[str, Form(max_length=2000)] = "",
             expires_on: Annotated[str, Form(max_length=10)] = "") -> Response:
    row = _row(service, snapshot, user, enterprise_id)
    try:
        if grade not in GRADE_CHOICES:
            raise Problem(422, f"grade must be one of A, B, C, D; got {grade!r}")
        try:
            until = date.fromisoformat(expires_on)
        except ValueError:
            raise Problem(422, f"expires_on must be a date YYYY-MM-DD; got {expires_on!r}") from None
        _, request.state.audit_detail = record_override(service, user, row, grade, reason, until, now)
    except Problem as exc:
        request.state.audit_detail = f"override refused: {exc.detail}"
        return _enterprise_with_error(request, row, user, snapshot, service, now, exc.detail)
    return _see_other(f"/ui/enterprises/{enterprise_id}#overrides")


@router.post("/enterprises/{enterprise_id}/overrides/{override_id}/withdraw", name="ui_withdraw_override")
def withdraw(request: Request, enterprise_id: str, override_id: int, user: Overrider, snapshot: SnapshotDep,
             service: ServiceDep, now: Now, reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    row = _row(service, snapshot, user, enterprise_id)
    try:
        request.state.audit_detail = withdraw_override_of(service, user, row, override_id, reason, now)
    except Problem as exc:
        if exc.status == 404:
            raise
        request.state.audit_detail = f"withdrawal refused: {exc.detail}"
        return _enterprise_with_error(request, row, user, snapshot, service, now, exc.detail)
    except ConflictError as exc:
        request.state.audit_detail = f"withdrawal refused: {exc}"
        return _enterprise_with_error(request, row, user, snapshot, service, now, str(exc), status=409)
    return _see_other(f"/ui/enterprises/{enterprise_id}#overrides")


def _enterprise_with_error(request: Request, row: dict[str, Any], user: AuthPrincipal, snapshot: Snapshot,
                           service: Service, now: datetime, message: str, status: int = 422) -> Response:
    context = _enterprise_context(request, row, user, snapshot, service, now)
    return render(request, "enterprise.html", {**context, "error": message}, status=status)


# --- a sector partner's list ---------------------------------------------------------------------


@router.get("/sector", name="ui_sector")
def sector_page(request: Request, user: GradeViewer, snapshot: SnapshotDep, service: ServiceDep, now: Now,
                sector: Annotated[str | None, Query(max_length=64)] = None,
                grade: Annotated[str | None, Query(max_length=1)] = None,
                page: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> Response:
    """A sector's enterprises by served grade, with their inspection frequencies (a partner sees its
    own sector only, an inspector the enterprises in their districts)."""
    chosen = user.sector if user.role == "sector" else (sector or PILOT_SECTORS[0])
    if user.role == "sector" and sector not in (None, user.sector):
        raise not_found("sector")
    rows = service.overrides.served(snapshot.sector_rows(chosen or "").filter(user.scope_expr()), now)
    counts = {g: rows.filter(pl.col("grade") == g).height for g in GRADE_CHOICES}
    if grade in GRADE_CHOICES:
        rows = rows.filter(pl.col("grade") == grade)
    rows = rows.sort(["grade", "score", "enterprise_id"], descending=[True, True, False])
    size = service.settings.ui.page_size
    items = []
    for r in rows.slice((page - 1) * size, size).select(
            "enterprise_id", "name", "district", "grade", "score", "sector").iter_rows(named=True):
        ratio, minimum = snapshot.frequency(r["sector"], r["grade"])
        items.append({**r, "ratio": ratio, "minimum": minimum})
    frequencies = {g: snapshot.frequency(chosen, g) for g in GRADE_CHOICES}
    request.state.audit_detail = f"sector={chosen} rows={rows.height}"
    return render(request, "sector.html", {
        "sector": chosen, "sectors": PILOT_SECTORS, "items": items, "total": rows.height, "counts": counts,
        "grade": grade if grade in GRADE_CHOICES else None, "page": page,
        "pages": max(1, -(-rows.height // size)), "frequencies": frequencies,
    })


