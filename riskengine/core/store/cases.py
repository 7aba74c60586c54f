"""The credit office's cases in the serving store: objections (异议) and credit repairs (信用修复).

A record family of the store (a ``StoreBase`` with its own DDL), opened on a ``Store``'s file rather
than among its bases: its tables are created on the family's first write and only they are checked
when it reads, so a store written before cases existed still reads.

Tables (in the same DuckDB file as grades, created on first write): ``cases`` (one row per case with
its current status, the due day of its current step, and the effect its decision must have) and
``case_steps`` (every step: who, when, why; never updated or deleted).

A step is one transaction: the current status is read and checked, the case updated and the step
appended together, so of two officers deciding the same case at once exactly one succeeds; the other
gets ``CaseStateError`` (a 409 conflict) naming the status it found. A decision that changes the
credit record (an upheld objection, an approved repair) stores *in the same transaction* the records
it must write (``effect``) with ``effect_state = 'pending'``; ``riskengine.workflows.cases`` then
writes them into the lake and regrades, and marks the effect ``done``. See that module for crash
safety.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from riskengine.core.errors import CaseStateError, NotFoundError
from riskengine.core.store.audit import AUDIT_SCHEMA
from riskengine.core.store.base import utcnow
from riskengine.core.store.lazy import LazyFamily

KINDS = ("objection", "repair")
# Status after each step, by kind and the status the step starts from (CONTRACT section 5).
TRANSITIONS: dict[str, dict[str, dict[str, str]]] = {
    "objection": {
        "received": {"accept": "accepted", "refuse": "refused"},
        "accepted": {"uphold": "upheld", "reject": "rejected"},
    },
    "repair": {
        "received": {"accept": "accepted", "refuse": "refused"},
        "accepted": {"approve": "approved", "deny": "denied"},
    },
}
OPEN_STATUSES = ("received", "accepted")
DECISIONS = ("upheld", "rejected", "approved", "denied")
PREFIX = {"objection": "OBJ", "repair": "REP"}

_DDL = """
CREATE TABLE IF NOT EXISTS cases (
    case_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    enterprise_id VARCHAR NOT NULL,
    district VARCHAR,
    sector VARCHAR,
    received_on DATE NOT NULL,
    status VARCHAR NOT NULL,
    due_on DATE,
    subject_table VARCHAR,
    subject_id VARCHAR,
    statement VARCHAR,
    eligibility JSON,
    documents JSON,
    decided_on DATE,
    effect_state VARCHAR,
    effect JSON,
    opened_by VARCHAR NOT NULL,
    opened_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS case_steps (
    case_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    step VARCHAR NOT NULL,
    status_before VARCHAR,
    status_after VARCHAR NOT NULL,
    taken_on DATE NOT NULL,
    officer VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
"""
_COLUMNS = ("case_id", "kind", "enterprise_id", "district", "sector", "received_on", "status", "due_on",
            "subject_table", "subject_id", "statement", "eligibility", "documents", "decided_on",
            "effect_state", "effect", "opened_by", "opened_at")
_STEP_COLUMNS = ("step", "status_before", "status_after", "taken_on", "officer", "reason", "recorded_at")


@dataclass(frozen=True)
class CaseStep:
    """One step of a case: ``open`` first, then accept/refuse, then the decision."""

    step: str
    status_before: str | None
    status_after: str
    taken_on: date
    officer: str
    reason: str
    recorded_at: datetime


@dataclass(frozen=True)
class Case:
    """A case as stored, with its steps (oldest first)."""

    case_id: str
    kind: str
    enterprise_id: str
    district: str | None
    sector: str | None
    received_on: date
    status: str
    due_on: date | None
    subject_table: str | None
    subject_id: str | None
    statement: str | None
    eligibility: dict[str, Any] | None
    documents: list[dict[str, Any]]
    decided_on: date | None
    effect_state: str | None
    effect: dict[str, Any] | None
    opened_by: str
    opened_at: datetime
    steps: tuple[CaseStep, ...] = field(default=())

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    def overdue(self, today: date) -> bool:
        """Past the due day of its current step and the step not taken (CONTRACT section 5)."""
        return self.open and self.due_on is not None and today > self.due_on

    def next_steps(self) -> list[str]:
        return list(TRANSITIONS[self.kind].get(self.status, {}))


def _insert_audit(con: duckdb.DuckDBPyConnection, entry: Mapping[str, Any]) -> None:
    """The step's audit entry, in the step's own transaction: a step is never stored unaudited."""
    marks = ", ".join("?" * len(AUDIT_SCHEMA))
    con.execute(f"INSERT INTO audit_log ({', '.join(AUDIT_SCHEMA)}) VALUES ({marks})",
                [entry.get(c) for c in AUDIT_SCHEMA])


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class CaseStore(LazyFamily):
    """Cases in the serving store ``store`` (its file and lock timeout; the connections, locks and
    transactions are ``StoreBase``'s)."""

    DDL = _DDL
    TABLES = ("cases", "case_steps")

    # --- reading -------------------------------------------------------------------------------

    def _cases(self, con: duckdb.DuckDBPyConnection, where: str = "", params: Sequence[Any] = ()
               ) -> list[Case]:
        rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM cases {where} ORDER BY received_on, case_id",
                           list(params)).fetchall()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        steps: dict[str, list[CaseStep]] = {}
        for r in con.execute(f"SELECT case_id, {', '.join(_STEP_COLUMNS)} FROM case_steps "
                             "WHERE case_id IN (SELECT unnest(?)) ORDER BY case_id, seq", [ids]).fetchall():
            steps.setdefault(r[0], []).append(CaseStep(*r[1:]))
        out = []
        for r in rows:
            values = dict(zip(_COLUMNS, r, strict=True))
            values["eligibility"] = _loads(values["eligibility"])
            values["documents"] = _loads(values["documents"]) or []
            values["effect"] = _loads(values["effect"])
            out.append(Case(**values, steps=tuple(steps.get(values["case_id"], []))))
        return out

    def get(self, case_id: str) -> Case:
        """One case; ``NotFoundError`` if there is none with that id."""
        with self._read() as con:
            found = self._cases(con, "WHERE case_id = ?", [case_id]) if con is not None else []
        if not found:
            raise NotFoundError(f"no case {case_id}")
        return found[0]

    def all(self, *, kind: str | None = None, enterprise_id: str | None = None) -> list[Case]:
        """Every case (of one kind, of one enterprise), oldest receipt first."""
        clauses, params = [], []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        if enterprise_id is not None:
            clauses.append("enterprise_id = ?")
            params.append(enterprise_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as con:
            return self._cases(con, where, params) if con is not None else []

    def pending_effects(self) -> list[Case]:
        """Decided cases whose records are not yet in the lake (or whose regrade did not happen)."""
        with self._read() as con:
            return self._cases(con, "WHERE effect_state = 'pending'") if con is not None else []

    def disputed(self) -> set[str]:
        """Enterprises with an objection still open: their grade is served ``disputed``."""
        with self._read() as con:
            if con is None:
                return set()
            rows = con.execute("SELECT DISTINCT enterprise_id FROM cases WHERE kind = 'objection' "
                               "AND status IN ('received', 'accepted')").fetchall()
        return {r[0] for r in rows}

    # --- writing -------------------------------------------------------------------------------

    def open_case(self, *, kind: str, enterprise_id: str, district: str | None, sector: str | None,
                  received_on: date, due_on: date, subject_table: str | None, subject_id: str | None,
                  statement: str | None, eligibility: Mapping[str, Any] | None,
                  documents: Sequence[Mapping[str, Any]], officer: str, reason: str,
                  audit: Mapping[str, Any] | None = None) -> Case:
        """Record a new case (status ``received``) and its ``open`` step; the id is ``OBJ-YYYY-NNNNNN``
        or ``REP-YYYY-NNNNNN``, numbered per kind and year of receipt."""
        now = utcnow()
        with self._write() as con:
            prefix = f"{PREFIX[kind]}-{received_on.year}-"
            row = con.execute("SELECT count(*) FROM cases WHERE starts_with(case_id, ?)", [prefix]).fetchone()
            case_id = f"{prefix}{(row[0] if row else 0) + 1:06d}"
            con.execute(
                f"INSERT INTO cases ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                [case_id, kind, enterprise_id, district, sector, received_on, "received", due_on,
                 subject_table, subject_id, statement,
                 json.dumps(eligibility, ensure_ascii=False) if eligibility is not None else None,
                 json.dumps(list(documents), ensure_ascii=False), None, None, None, officer, now])
            con.execute("INSERT INTO case_steps VALUES (?, 0, 'open', NULL, 'received', ?, ?, ?, ?)",
                        [case_id, received_on, officer, reason, now])
            if audit is not None:
                _insert_audit(con, {**audit, "resource": f"case:{case_id}"})
        return self.get(case_id)

    def take_step(self, case_id: str, step: str, *, taken_on: date, officer: str, reason: str,
                  due_on: date | None, effect: Mapping[str, Any] | None = None,
                  check: Any = None, audit: Mapping[str, Any] | None = None) -> Case:
        """Move a case by one step, checking in the same transaction that the step is allowed from its
        current status (``CaseStateError`` naming that status otherwise; nothing changes).

        ``check(case)`` (optional) may raise to refuse the step after the status check (e.g. an
        incomplete application); ``effect`` is stored with ``effect_state = 'pending'``.
        """
        now = utcnow()
        with self._write() as con:
            found = self._cases(con, "WHERE case_id = ?", [case_id])
            if not found:
                raise NotFoundError(f"no case {case_id}")
            case = found[0]
            allowed = TRANSITIONS[case.kind].get(case.status, {})
            if step not in allowed:
                if case.status in DECISIONS or case.status == "refused":
                    why = f"case {case_id} is already {case.status}"
                else:
                    why = (f"case {case_id} is {case.status}: the next step is "
                           f"{' or '.join(allowed)}, not {step}")
                raise CaseStateError(why, case.status)
            if check is not None:
                check(case)
            after = allowed[step]
            decided = after in DECISIONS or after == "refused"
            con.execute(
                "UPDATE cases SET status = ?, due_on = ?, decided_on = ?, effect_state = ?, effect = ? "
                "WHERE case_id = ?",
                [after, None if decided else due_on, taken_on if decided else None,
                 "pending" if effect is not None else None,
                 json.dumps(effect, ensure_ascii=False, default=str) if effect is not None else None,
                 case_id])
            con.execute("INSERT INTO case_steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [case_id, len(case.steps), step, case.status, after, taken_on, officer, reason, now])
            if audit is not None:
                _insert_audit(con, audit)
        return self.get(case_id)

    def set_documents(self, case_id: str, documents: Sequence[Mapping[str, Any]]) -> Case:
        with self._write() as con:
            con.execute("UPDATE cases SET documents = ? WHERE case_id = ?",
                        [json.dumps(list(documents), ensure_ascii=False), case_id])
        return self.get(case_id)

    def effect_done(self, case_id: str) -> None:
        """The decision's records are in the lake and the enterprise is regraded."""
        with self._write() as con:
            con.execute("UPDATE cases SET effect_state = 'done' WHERE case_id = ?", [case_id])
