"""The credit office's cases (CONTRACT section 5): objections (异议) and credit repairs (信用修复).

What the CLI (``riskengine cases …``) and the API both call. A case is opened on an enterprise's
behalf, takes its steps in order (``received`` → ``accepted``/``refused`` → ``upheld``/``rejected``
or ``approved``/``denied``), each with an officer, a day and a reason, and each due on the working
day the policy file's deadline gives (``riskengine.core.calendar``).

**Crash safety between "decided" and "record written".** A decision that changes the credit record
is stored in one store transaction together with the exact records it must write (the *effect*,
``effect_state = 'pending'``): a void (upheld objection), or a credit repair / list removal and the
enterprise's ``repair`` commitment (approved repair), each with an id derived from the case id.
The records then enter the lake through the ordinary ingest (staged, journalled, committed by one
rename, so never half-written), the enterprise is regraded, and the effect is marked ``done``.
A crash anywhere in between leaves a decided case with a pending effect, never a record without its
decision: ``complete_pending`` (run first by every case command and by the API before it answers a
case request) writes the same records again — ingest counts a record already in the lake with the
same content as an exact duplicate, so a replay adds nothing twice — regrades and marks it done.
A case's JSON shows ``effect: pending`` until then.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from features.penalties import INFLUENCE
from models.scoring import active_enterprises, enterprise_features, score_features
from riskengine.core.audit import make_entry
from riskengine.core.calendar import add_working_days, working_days_between
from riskengine.core.config import Settings
from riskengine.core.contract import TABLES, VOIDABLE_TABLES
from riskengine.core.errors import ConflictError, ModelError, NotFoundError, RiskEngineError, UsageError
from riskengine.core.store import Store
from riskengine.core.store.cases import DECISIONS, KINDS, OPEN_STATUSES, TRANSITIONS, Case, CaseStore
from riskengine.core.timerule import known_before
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import load_tables, scan_table
from riskengine.supervision.policy import CaseDeadlines, load_policy
from riskengine.workflows.scoring import load_champion

Regrader = Callable[[Path, str, date], pl.DataFrame]
"""(lake, enterprise_id, as_of) → the enterprise's grades-frame row as of that day."""

# Documents of a credit-repair application (信用修复申请材料) and their names for officers.
DOCUMENTS: dict[str, tuple[str, str]] = {
    "rectification_proof": ("整改材料", "proof of rectification"),
    "credit_pledge": ("信用修复承诺书（守信承诺）", "credit pledge (守信承诺书)"),
    "fine_receipt": ("罚款缴纳凭证", "receipt of the fine paid"),
}
STEP_NAMES = {"accept": "受理", "refuse": "不予受理", "uphold": "异议成立", "reject": "异议不成立",
              "approve": "准予修复", "deny": "不予修复"}


def case_store(settings: Settings) -> CaseStore:
    return CaseStore(Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout))


def deadlines(settings: Settings) -> CaseDeadlines:
    return load_policy(settings.policy_path).cases


# --- reading the lake ---------------------------------------------------------------------------


def _enterprise(lake: Path, enterprise_id: str) -> dict[str, Any]:
    found = scan_table(lake, "enterprises").filter(pl.col("enterprise_id") == enterprise_id).collect()
    if found.height == 0:
        raise NotFoundError(f"no enterprise {enterprise_id} in the lake {lake}")
    return found.row(0, named=True)


def _record(lake: Path, table: str, record_id: str, enterprise_id: str) -> dict[str, Any]:
    """A record of ``table`` with ``record_id`` that belongs to the enterprise (NotFoundError else)."""
    if table not in VOIDABLE_TABLES:
        raise UsageError(f"--record must name one of {', '.join(VOIDABLE_TABLES)}; got {table!r}")
    key = TABLES[table].key
    found = scan_table(lake, table).filter(pl.col(key) == record_id).collect()
    if found.height == 0 or found["enterprise_id"][0] != enterprise_id:
        raise NotFoundError(f"no {table} record {record_id} of enterprise {enterprise_id} in the lake")
    return found.row(0, named=True)


def _offset(day: date, period: str) -> date:
    """``day`` plus a calendar period such as ``3mo`` or ``1y`` (as the penalty features count it)."""
    return pl.Series([day]).dt.offset_by(period)[0]  # type: ignore[no-any-return]




def eligibility(lake: Path, case_kind_subject: tuple[str, str], enterprise_id: str, on: date,
                rules: CaseDeadlines, documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether a repair of a penalty or list entry may be approved on ``on`` (CONTRACT sections 2, 5):
    the minimum period has passed, the fine is paid, and no repeat violation since. Each check
    says what it looked at; ``eligible`` is all of them."""
    table, subject_id = case_kind_subject
    tables = load_tables(lake)
    received = {d["code"] for d in documents if d["state"] == "received"}
    checks: dict[str, dict[str, Any]] = {}
    pens = known_before(tables["penalties"].filter(pl.col("enterprise_id") == enterprise_id),
                        "decided_on", on).collect()
    if table == "penalties":
        pen = _record(lake, "penalties", subject_id, enterprise_id)
        minimum, full = INFLUENCE[pen["severity"]][1], INFLUENCE[pen["severity"]][0]
        earliest = _offset(pen["decided_on"], minimum)
        checks["minimum_period"] = {"ok": earliest <= on, "earliest": earliest.isoformat(),
                                    "rule": f"{pen['severity']}: {minimum} after {pen['decided_on']}"}
        checks["still_in_effect"] = {"ok": _offset(pen["decided_on"], full) > on,
                                     "ends": _offset(pen["decided_on"], full).isoformat()}
        fine = pen["fine_cny"] or 0.0
        checks["fine_paid"] = {"ok": fine == 0 or "fine_receipt" in received, "fine_cny": fine}
        since = pen["decided_on"]
        repairs = tables["credit_repairs"].filter(pl.col("case_id") == subject_id).collect()
        checks["not_repaired_yet"] = {"ok": repairs.height == 0}
    else:
        entry = _record(lake, "list_entries", subject_id, enterprise_id)
        months = rules.list_min_months.get(entry["list"], 0)
        earliest = _offset(entry["listed_on"], f"{months}mo")
        checks["minimum_period"] = {"ok": earliest <= on, "earliest": earliest.isoformat(),
                                    "rule": f"{entry['list']}: {months} months after {entry['listed_on']}"}
        removed = tables["list_removals"].filter(pl.col("entry_id") == subject_id).collect()
        checks["still_listed"] = {"ok": entry["removed_on"] is None and removed.height == 0}
        checks["fine_paid"] = {"ok": True, "fine_cny": None}
        since = entry["listed_on"]
    repeats = pens.filter((pl.col("decided_on") > since) & (pl.col("case_id") != subject_id)
                          & pl.col("severity").is_in(["moderate", "serious"]))
    checks["no_repeat"] = {"ok": repeats.height == 0, "since": since.isoformat(),
                           "repeats": repeats["case_id"].to_list()}
    return {"as_of": on.isoformat(), "eligible": all(c["ok"] for c in checks.values()), "checks": checks}


def _documents(received: Iterable[str], fine: bool) -> list[dict[str, Any]]:
    received = set(received)
    unknown = sorted(received - set(DOCUMENTS))
    if unknown:
        raise UsageError(f"unknown document(s) {', '.join(unknown)}; known: {', '.join(DOCUMENTS)}")
    codes = [c for c in DOCUMENTS if c != "fine_receipt" or fine]
    return [{"code": c, "name_zh": DOCUMENTS[c][0], "name_en": DOCUMENTS[c][1],
             "state": "received" if c in received else "missing"} for c in codes]


# --- opening --------------------------------------------------------------------------------------


def _check_day(day: date, today: date, what: str) -> None:
    if day > today:
        raise UsageError(f"{what} {day} is after today ({today})")


def open_objection(settings: Settings, lake: Path, enterprise_id: str, *, received_on: date,
                   record: tuple[str, str] | None, statement: str, officer: str,
                   today: date | None = None) -> Case:
    """Record an objection against one record (``record`` = (table, id)) or, without one, the grade."""
    today = today or date.today()
    _check_day(received_on, today, "--received-on")
    if not statement.strip():
        raise UsageError("an objection needs the enterprise's statement (--statement)")
    firm = _enterprise(lake, enterprise_id)
    if record is not None:
        _record(lake, record[0], record[1], enterprise_id)
    rules = deadlines(settings)
    store = case_store(settings)
    complete_pending(settings, lake)
    case = store.open_case(
        kind="objection", enterprise_id=enterprise_id, district=firm["district"], sector=firm["sector"],
        received_on=received_on, due_on=add_working_days(received_on, rules.objection_accept_days),
        subject_table=record[0] if record else None, subject_id=record[1] if record else None,
        statement=statement, eligibility=None, documents=[], officer=officer, reason=statement,
        audit=_entry("cases.open", "", officer, f"objection of {enterprise_id}"))
    return case


def open_repair(settings: Settings, lake: Path, enterprise_id: str, *, received_on: date,
                penalty: str | None, list_entry: str | None, documents: Sequence[str], officer: str,
                statement: str | None = None, today: date | None = None) -> Case:
    """Record a credit-repair application for one penalty case or one list entry, with the documents
    received so far and the eligibility as of the receipt day."""
    today = today or date.today()
    _check_day(received_on, today, "--received-on")
    if (penalty is None) == (list_entry is None):
        raise UsageError("a repair names exactly one of --penalty CASE_ID or --list-entry ENTRY_ID")
    firm = _enterprise(lake, enterprise_id)
    subject = ("penalties", penalty) if penalty is not None else ("list_entries", list_entry)
    row = _record(lake, subject[0], subject[1], enterprise_id)  # type: ignore[arg-type]
    docs = _documents(documents, fine=subject[0] == "penalties" and bool(row.get("fine_cny")))
    rules = deadlines(settings)
    store = case_store(settings)
    complete_pending(settings, lake)
    check = eligibility(lake, subject, enterprise_id, received_on, rules, docs)  # type: ignore[arg-type]
    case = store.open_case(
        kind="repair", enterprise_id=enterprise_id, district=firm["district"], sector=firm["sector"],
        received_on=received_on, due_on=add_working_days(received_on, rules.repair_accept_days),
        subject_table=subject[0], subject_id=subject[1], statement=statement, eligibility=check,
        documents=docs, officer=officer, reason=statement or "credit repair application",
        audit=_entry("cases.open", "", officer, f"repair of {enterprise_id}: {subject[0]} {subject[1]}"))
    return case


def receive_documents(settings: Settings, lake: Path, case_id: str, codes: Sequence[str], officer: str
                      ) -> Case:
    """Mark documents of an open repair application received (recomputing eligibility)."""
    store = case_store(settings)
    case = store.get(case_id)
    if case.kind != "repair" or not case.open:
        raise ConflictError(f"case {case_id} is a {case.kind} with status {case.status}: "
                            "documents are received only for an open repair application")
    have = {d["code"] for d in case.documents if d["state"] == "received"} | set(codes)
    docs = _documents(have, fine=any(d["code"] == "fine_receipt" for d in case.documents))
    case = store.set_documents(case_id, docs)
    _audit(store, "cases.documents", case, officer, ",".join(codes))
    return case


# --- steps ----------------------------------------------------------------------------------------


def _effect(lake: Path, case: Case, on: date) -> dict[str, Any]:
    """The records a decision writes (ids derived from the case id, so a replay writes the same)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    if case.kind == "objection" and case.subject_table is not None:
        tables["record_voids"] = [{
            "void_id": f"VOID-{case.case_id}", "enterprise_id": case.enterprise_id,
            "record_table": case.subject_table, "record_id": case.subject_id, "voided_on": on,
            "case_id": case.case_id, "reason": "objection upheld", "recorded_on": on}]
    if case.kind == "repair":
        if case.subject_table == "penalties":
            tables["credit_repairs"] = [{"repair_id": f"CR-{case.case_id}", "case_id": case.subject_id,
                                         "repaired_on": on, "recorded_on": on}]
        else:
            tables["list_removals"] = [{"removal_id": f"RM-{case.case_id}", "entry_id": case.subject_id,
                                        "removed_on": on, "removal_reason": "credit_repair",
                                        "recorded_on": on}]
        # The enterprise's pledge (守信承诺) of the application, kept for a year from the decision.
        tables["commitments"] = [{
            "commitment_id": f"CMT-{case.case_id}", "enterprise_id": case.enterprise_id,
            "made_on": case.received_on, "kind": "repair", "due_on": _offset(on, "1y"), "status": "open",
            "status_changed_on": None, "recorded_on": on}]
    return {"tables": tables, "decided_on": on.isoformat()}


def take_step(settings: Settings, lake: Path, case_id: str, step: str, *, reason: str, officer: str,
              on: date | None = None, today: date | None = None, regrader: Regrader | None = None) -> Case:
    """Take one step of a case (accept, refuse, uphold, reject, approve, deny) on day ``on``.

    A step its status does not allow raises ``CaseStateError`` (409 / exit 1) naming the status, and
    nothing changes. A repair is accepted only when its application is complete, and approved only
    when eligible on the decision day. An upheld objection or approved repair writes its records into
    the lake and regrades the enterprise before this returns.
    """
    today = today or date.today()
    on = on or today
    _check_day(on, today, "--on")
    if not reason.strip():
        raise UsageError("every step needs a reason (--reason)")
    if step not in {s for kind in TRANSITIONS.values() for steps in kind.values() for s in steps}:
        raise UsageError(f"unknown step {step!r}; steps are accept, refuse, uphold, reject, approve, deny")
    rules = deadlines(settings)
    store = case_store(settings)
    complete_pending(settings, lake, regrader)
    current = store.get(case_id)
    if on < current.steps[-1].taken_on:
        raise UsageError(f"--on {on} is before the case's last step ({current.steps[-1].taken_on})")
    effect: dict[str, Any] | None = None
    fresh: dict[str, Any] | None = None

    def check(case: Case) -> None:
        if case.kind == "repair" and step == "accept":
            missing = [d["name_en"] for d in case.documents if d["state"] != "received"]
            if missing:
                raise ConflictError(f"case {case_id}: the application is incomplete (missing "
                                    f"{', '.join(missing)}); receive the documents or refuse it")
        if case.kind == "repair" and step == "approve":
            failed = [k for k, c in (fresh or {}).get("checks", {}).items() if not c["ok"]]
            if failed:
                raise ConflictError(f"case {case_id} is not eligible on {on} ({', '.join(failed)}); "
                                    "deny it instead")

    due = None
    if step == "accept":
        days = rules.objection_decide_days if current.kind == "objection" else rules.repair_decide_days
        due = add_working_days(on, days)
    if current.kind == "repair" and step == "approve" and current.subject_table and current.subject_id:
        fresh = eligibility(lake, (current.subject_table, current.subject_id), current.enterprise_id, on,
                            rules, current.documents)
    if step in ("uphold", "approve"):
        effect = _effect(lake, current, on)
    case = store.take_step(case_id, step, taken_on=on, officer=officer, reason=reason, due_on=due,
                           effect=effect, check=check,
                           audit=_entry(f"cases.{step}", case_id, officer,
                                        f"{current.enterprise_id}: {reason}"))
    if effect is not None:
        apply_effect(settings, lake, case, regrader)
        case = store.get(case_id)
    return case


# --- effects --------------------------------------------------------------------------------------


def _write_records(lake: Path, enterprise_id: str, tables: Mapping[str, list[dict[str, Any]]],
                   ingest_day: date) -> None:
    """Write ``tables`` into the lake through the ordinary ingest (with the enterprise's own row, which
    ingest counts as an exact duplicate). A replay of the same records adds nothing."""
    firm = scan_table(lake, "enterprises").filter(pl.col("enterprise_id") == enterprise_id).collect()
    with tempfile.TemporaryDirectory(prefix="riskengine-case-") as tmp:
        src = Path(tmp)
        firm.write_parquet(src / "enterprises.parquet")
        for name, rows in tables.items():
            pl.DataFrame(rows, schema=TABLES[name].schema).write_parquet(src / f"{name}.parquet")
        report = ingest(src, lake, id_scheme="any", ingest_day=ingest_day)
    bad = {name: counts for name, counts in report.tables.items() if counts["quarantined"]}
    if bad:
        raise RiskEngineError(f"the case's records were quarantined by ingest ({bad}); see "
                              f"{lake}/_quarantine run {report.run_id}")


def apply_effect(settings: Settings, lake: Path, case: Case, regrader: Regrader | None = None) -> None:
    """Write a decided case's records into the lake, regrade the enterprise, mark the effect done."""
    if case.effect is None:
        return
    decided = date.fromisoformat(case.effect["decided_on"])
    tables = {name: [{k: (date.fromisoformat(v) if isinstance(v, str) and k.endswith("_on") else v)
                      for k, v in row.items()} for row in rows]
              for name, rows in case.effect.get("tables", {}).items()}
    if tables:
        _write_records(lake, case.enterprise_id, tables, max(decided, date.today()))
    store = Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)
    as_of = decided + timedelta(days=1)  # the void / repair dated on the decision day counts from here
    try:
        latest = store.grade_dates()
        if latest and latest[-1] > as_of:
            as_of = latest[-1]
        row = (regrader or champion_regrader(settings))(lake, case.enterprise_id, as_of)
        store.save_regrade(row, case.case_id)
    except (ModelError, NotFoundError):
        pass  # no champion model or not graded (inactive): the record is written, nothing to regrade
    CaseStore(store).effect_done(case.case_id)


def complete_pending(settings: Settings, lake: Path, regrader: Regrader | None = None) -> list[str]:
    """Finish every decided case whose effect a crash interrupted (see the module docstring)."""
    done = []
    for case in case_store(settings).pending_effects():
        apply_effect(settings, lake, case, regrader)
        done.append(case.case_id)
    return done


def champion_regrader(settings: Settings) -> Regrader:
    """Regrade one enterprise with the champion model, anchored on its served grade (hysteresis)."""

    def regrade(lake: Path, enterprise_id: str, as_of: date) -> pl.DataFrame:
        if not settings.mlflow.tracking_uri and not (settings.mlruns_dir / "mlflow.db").exists():
            raise ModelError("no model was ever trained here, so there is no champion to regrade with")
        tables = load_tables(lake)
        found = active_enterprises(tables, as_of).filter(pl.col("enterprise_id") == enterprise_id)
        if found.height == 0:
            raise NotFoundError(f"enterprise {enterprise_id} is not graded as of {as_of} (not active)")
        model = load_champion(settings)
        features = enterprise_features(tables, as_of, found["enterprise_id"])
        try:
            previous = Store(settings.store_file).latest_grades()
        except NotFoundError:
            previous = None
        return score_features(model, features, previous, settings, enterprises=found, tables=tables)

    return regrade


# --- views ----------------------------------------------------------------------------------------


def _audit(store: CaseStore, action: str, case: Case, officer: str, detail: str) -> None:
    entry = _entry(action, case.case_id, officer, f"{case.enterprise_id}: {detail}")
    Store(store.path, lock_timeout=store.lock_timeout).append_audit([entry])


def _entry(action: str, case_id: str, officer: str, detail: str) -> dict[str, Any]:
    """The audit entry of one case step (stored in the step's own transaction)."""
    return make_entry(action, resource=f"case:{case_id}", status=200, key_name=officer, role="credit_office",
                      detail=detail)


def case_view(case: Case, today: date, *, documents: bool = True) -> dict[str, Any]:
    """A case as the CONTRACT's JSON object: its clock (due day, overdue, working days left) and steps.
    ``documents=False`` leaves out the statement, documents, eligibility and the steps' officers and
    reasons (for callers outside the credit office, who may see that a case exists, never its papers)."""
    out: dict[str, Any] = {
        "case_id": case.case_id, "enterprise_id": case.enterprise_id, "kind": case.kind,
        "status": case.status, "received_on": case.received_on.isoformat(),
        "due_on": case.due_on.isoformat() if case.due_on else None, "overdue": case.overdue(today),
        "working_days_left": (working_days_between(today, case.due_on) if case.due_on and case.open
                              and not case.overdue(today) else None),
        "next_steps": case.next_steps(),
        "decided_on": case.decided_on.isoformat() if case.decided_on else None,
        "district": case.district, "sector": case.sector,
    }
    if not documents:
        out["steps"] = [{"step": s.step, "status_after": s.status_after, "on": s.taken_on.isoformat()}
                        for s in case.steps]
        return out
    out |= {
        "subject": ({"table": case.subject_table, "record_id": case.subject_id}
                    if case.subject_table else {"grade": True}),
        "statement": case.statement, "documents": case.documents, "eligibility": case.eligibility,
        "effect": case.effect_state,
        "steps": [{"step": s.step, "name_zh": STEP_NAMES.get(s.step, "收件"),
                   "status_before": s.status_before,
                   "status_after": s.status_after, "on": s.taken_on.isoformat(), "officer": s.officer,
                   "reason": s.reason, "recorded_at": s.recorded_at.isoformat(timespec="seconds")}
                  for s in case.steps],
    }
    return out


@dataclass(frozen=True)
class CaseFilter:
    kind: str | None = None
    status: str | None = None
    overdue: bool = False
    district: str | None = None
    enterprise_id: str | None = None

    def check(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise UsageError(f"--kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        known = (*OPEN_STATUSES, "refused", *DECISIONS)
        if self.status is not None and self.status not in known:
            raise UsageError(f"--status must be one of {', '.join(known)}; got {self.status!r}")


def list_cases(settings: Settings, where: CaseFilter, today: date) -> list[Case]:
    """Cases matching ``where`` (overdue as of ``today``), oldest receipt first."""
    where.check()
    cases = case_store(settings).all(kind=where.kind, enterprise_id=where.enterprise_id)
    return [c for c in cases
            if (where.status is None or c.status == where.status)
            and (not where.overdue or c.overdue(today))
            and (where.district is None or c.district == where.district)]


def overview(cases: Sequence[Case], today: date) -> dict[str, Any]:
    """What a head of office needs: open cases by kind and step, overdue, median days to decision."""
    open_by: dict[str, dict[str, int]] = {k: dict.fromkeys(OPEN_STATUSES, 0) for k in KINDS}
    decided = [c for c in cases if c.decided_on is not None]
    for c in cases:
        if c.open:
            open_by[c.kind][c.status] += 1
    days = [(c.decided_on - c.received_on).days for c in decided if c.decided_on]
    work = [working_days_between(c.received_on, c.decided_on) for c in decided if c.decided_on]
    return {
        "as_of": today.isoformat(),
        "open": open_by,
        "open_total": sum(sum(v.values()) for v in open_by.values()),
        "overdue": sum(c.overdue(today) for c in cases),
        "overdue_by_kind": {k: sum(c.overdue(today) for c in cases if c.kind == k) for k in KINDS},
        "decided": len(decided),
        "median_days_to_decision": statistics.median(days) if days else None,
        "median_working_days_to_decision": statistics.median(work) if work else None,
    }


def disputed(settings: Settings) -> set[str]:
    """Enterprises with an open objection: their grade is served with ``disputed: true``."""
    return case_store(settings).disputed()


def mark_disputed(grades: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """``grades`` with a ``disputed`` column: true where an objection is open (plans, Excel)."""
    ids = disputed(settings) if Path(settings.store_file).exists() else set()
    return grades.with_columns(pl.col("enterprise_id").is_in(sorted(ids)).alias("disputed"))


# --- the credit office's attention list ----------------------------------------------------------


def attention(lake: Path, today: date, rules: CaseDeadlines) -> list[dict[str, Any]]:
    """What the credit office must act on soon, as of ``today`` (records known before it): abnormal-
    operation listings reaching three years (when they move to the serious list) within
    ``rules.attention_abnormal_days``, and open commitments due within ``rules.attention_commitment_days``.
    Soonest first."""
    tables = load_tables(lake)
    firms = tables["enterprises"].select("enterprise_id", "name", "district")
    removed = known_before(tables["list_removals"], "removed_on", today).select("entry_id")
    three = pl.col("listed_on").dt.offset_by("3y")
    listings = (
        known_before(tables["list_entries"], "listed_on", today)
        .filter((pl.col("list") == "abnormal_operation")
                & (pl.col("removed_on").is_null() | (pl.col("removed_on") >= today)))
        .join(removed, on="entry_id", how="anti")
        .with_columns(three.alias("due_on"))
        .filter(pl.col("due_on").is_between(today, today + timedelta(days=rules.attention_abnormal_days)))
        .select("enterprise_id", pl.lit("list_entries").alias("table"), pl.col("entry_id").alias("record_id"),
                "due_on", pl.lit("ABNORMAL_LISTING_NEAR_3_YEARS").alias("rule"))
    )
    open_now = (pl.col("status") == "open") | (pl.col("status_changed_on") >= today)
    pledges = (
        known_before(tables["commitments"], "made_on", today)
        .filter(open_now & pl.col("due_on").is_between(
            today, today + timedelta(days=rules.attention_commitment_days)))
        .select("enterprise_id", pl.lit("commitments").alias("table"),
                pl.col("commitment_id").alias("record_id"), "due_on", pl.lit("COMMITMENT_DUE").alias("rule"))
    )
    rows = (pl.concat([listings, pledges]).join(firms, on="enterprise_id", how="left")
            .sort("due_on", "enterprise_id").collect())
    texts = {
        "ABNORMAL_LISTING_NEAR_3_YEARS": ("列入经营异常名录将满3年（{}），届时列入严重违法失信名单",
                                          "abnormal-operation listing reaches 3 years on {}: it then moves "
                                          "to the serious-dishonesty list"),
        "COMMITMENT_DUE": ("信用承诺将于{}到期，请核查履约情况",
                           "credit commitment falls due on {}: check it is kept"),
    }
    out = []
    for row in rows.iter_rows(named=True):
        zh, en = texts[row["rule"]]
        out.append({**row, "due_on": row["due_on"].isoformat(), "days_left": (row["due_on"] - today).days,
                    "text_zh": zh.format(row["due_on"]), "text_en": en.format(row["due_on"])})
    return out
