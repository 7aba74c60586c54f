"""The serving store: one DuckDB file with grades, plans, overrides, API keys and the audit log.

What `riskengine score` / `riskengine plan` write and `riskengine serve` reads. Design for DuckDB's
concurrency rule (one read-write *process* at a time, or many read-only ones):

* No process keeps the file open. Every method opens a connection, does its work in one
  transaction and closes it, so the API server and CLI commands take turns on the file lock.
* A call that meets another process's lock retries with back-off for ``lock_timeout`` seconds
  before raising :class:`StoreBusyError`; a long ``riskengine score`` therefore delays the
  server's audit flush (which retries later, see ``riskengine.core.audit``) instead of crashing either.
* Inside one process, calls on the same file are serialised by a lock, because DuckDB refuses a
  read-only and a read-write connection to the same file in one process.
* Writes are transactions: ``save_grades`` replaces an as_of (delete + insert) atomically, so a
  reader sees the old grades or the new ones, never a mix.
* Keys are stored as SHA-256 hashes of high-entropy tokens only (``riskengine.core.keys``); the audit log
  has no update or delete method.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from riskengine.core.contract import GRADES, GRADES_SCHEMA
from riskengine.core.errors import ConflictError, FatalInputError, NotFoundError, RiskEngineError

AUDIT_SCHEMA: dict[str, pl.DataType] = {
    "entry_id": pl.String(),
    "occurred_at": pl.Datetime("us"),
    "key_id": pl.String(),
    "key_name": pl.String(),
    "role": pl.String(),
    "action": pl.String(),
    "resource": pl.String(),
    "status": pl.Int32(),
    "detail": pl.String(),
}

_DDL = """
CREATE TABLE IF NOT EXISTS grades (
    enterprise_id VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    name VARCHAR,
    district VARCHAR,
    sector VARCHAR,
    probability DOUBLE,
    score BIGINT,
    grade VARCHAR,
    model_grade VARCHAR,
    rule VARCHAR,
    reasons STRUCT(code VARCHAR, contribution DOUBLE, text_zh VARCHAR, text_en VARCHAR)[],
    model_version VARCHAR
);
-- One enterprise regraded at once after a decided case (an upheld objection, an approved repair):
-- served over the run it follows until the next full run; the run's row stays in the history.
CREATE TABLE IF NOT EXISTS regrades (
    enterprise_id VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    name VARCHAR,
    district VARCHAR,
    sector VARCHAR,
    probability DOUBLE,
    score BIGINT,
    grade VARCHAR,
    model_grade VARCHAR,
    rule VARCHAR,
    reasons STRUCT(code VARCHAR, contribution DOUBLE, text_zh VARCHAR, text_en VARCHAR)[],
    model_version VARCHAR,
    case_id VARCHAR,
    saved_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS grade_runs (
    as_of DATE PRIMARY KEY,
    saved_at TIMESTAMP NOT NULL,
    n_rows BIGINT NOT NULL,
    model_version VARCHAR
);
CREATE SEQUENCE IF NOT EXISTS plan_ids START 1;
CREATE TABLE IF NOT EXISTS plans (
    plan_id BIGINT PRIMARY KEY,
    as_of DATE,
    period VARCHAR NOT NULL,
    saved_at TIMESTAMP NOT NULL,
    n_rows BIGINT NOT NULL,
    rows_table VARCHAR NOT NULL,
    meta JSON
);
CREATE SEQUENCE IF NOT EXISTS override_ids START 1;
CREATE TABLE IF NOT EXISTS overrides (
    override_id BIGINT PRIMARY KEY,
    enterprise_id VARCHAR NOT NULL,
    grade VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    expires_on DATE NOT NULL,
    created_by VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    withdrawn_at TIMESTAMP,
    withdrawn_by VARCHAR,
    withdraw_reason VARCHAR
);
-- Stores created before overrides could be withdrawn lack these columns: add them on open.
ALTER TABLE overrides ADD COLUMN IF NOT EXISTS withdrawn_at TIMESTAMP;
ALTER TABLE overrides ADD COLUMN IF NOT EXISTS withdrawn_by VARCHAR;
ALTER TABLE overrides ADD COLUMN IF NOT EXISTS withdraw_reason VARCHAR;
CREATE TABLE IF NOT EXISTS api_keys (
    key_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    role VARCHAR NOT NULL,
    districts VARCHAR[],
    sector VARCHAR,
    key_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS audit_log (
    entry_id VARCHAR NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    key_id VARCHAR,
    key_name VARCHAR,
    role VARCHAR,
    action VARCHAR NOT NULL,
    resource VARCHAR,
    status INTEGER,
    detail VARCHAR
);
"""

_TABLES = ("grades", "grade_runs", "plans", "overrides", "api_keys", "audit_log")
_OVERRIDE_COLUMNS = ("override_id", "enterprise_id", "grade", "reason", "expires_on", "created_by",
                     "created_at", "withdrawn_at", "withdrawn_by", "withdraw_reason")

# One lock per store file in this process (DuckDB rejects mixed read-only/read-write connections
# to one file inside a process; serialising also keeps the file lock short).
_PROCESS_LOCKS: dict[str, threading.RLock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.RLock())


def utcnow() -> datetime:
    """Now in UTC, naive (the store keeps naive UTC timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


class StoreBusyError(RiskEngineError):
    """The store file stayed locked by another process for longer than the lock timeout."""

    exit_code = 1
    http_status = 503
    title = "Store busy"


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: its id, who holds it, its role and scope, and the hash of the token."""

    key_id: str
    name: str | None
    role: str
    districts: tuple[str, ...]
    sector: str | None
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Override:
    """A credit-office grade override: active from ``created_at`` until the start of ``expires_on``,
    or until the moment it was withdrawn (the row and its withdrawal stay stored)."""

    override_id: int
    enterprise_id: str
    grade: str
    reason: str
    expires_on: date
    created_by: str
    created_at: datetime
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    withdraw_reason: str | None = None

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def active_on(self, at: date | datetime) -> bool:
        """Whether the override is in force at ``at``: a datetime is compared with the moment of
        withdrawal; a bare date counts as withdrawn from the day the withdrawal happened."""
        day = at.date() if isinstance(at, datetime) else at
        if not self.created_at.date() <= day < self.expires_on:
            return False
        if self.withdrawn_at is None:
            return True
        if isinstance(at, datetime):
            return at < self.withdrawn_at
        return day < self.withdrawn_at.date()


@dataclass(frozen=True)
class PlanRecord:
    """One stored plan: its rows (any columns the planner produced) and its meta."""

    plan_id: int
    as_of: date | None
    period: str
    saved_at: datetime
    meta: dict[str, Any]
    rows: pl.DataFrame


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() or "different configuration" in text


def _arrow(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    rel = con.sql(query, params=list(params) if params is not None else None)
    if rel is None:  # pragma: no cover - only for statements without results
        return pl.DataFrame()
    frame = pl.from_arrow(rel.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)  # from_arrow of a Table is always a DataFrame
    return frame


def _first(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None) -> Any:
    """The first row of a query, or None (fetches everything: DuckDB 2 refuses new work on a
    connection with an unfinished result)."""
    rows = con.execute(query, list(params) if params is not None else []).fetchall()
    return rows[0] if rows else None


def _jsonable(value: Any) -> Any:
    """Meta values as JSON (dates as ISO strings, frames as row lists, mappings recursively)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, pl.DataFrame):
        return _jsonable(value.to_dicts())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return _first(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name])[0] > 0


def _overlay_regrades(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """``frame`` (the run of ``as_of``) with the newest regrade of each enterprise saved after that run
    and dated on or after it in place of the run's row."""
    if not _has_table(con, "regrades"):
        return frame
    newer = _arrow(
        con,
        f"SELECT {', '.join(GRADES_SCHEMA)} FROM regrades r WHERE r.as_of >= ? AND r.saved_at > "
        "(SELECT saved_at FROM grade_runs WHERE as_of = ?) "
        "QUALIFY row_number() OVER (PARTITION BY enterprise_id ORDER BY saved_at DESC) = 1",
        [as_of, as_of],
    )
    if newer.height == 0:
        return frame
    newer = newer.cast(GRADES_SCHEMA)  # type: ignore[arg-type]
    kept = frame.cast(GRADES_SCHEMA).join(newer.select("enterprise_id"), on="enterprise_id",  # type: ignore[arg-type]
                                          how="anti")
    return pl.concat([kept, newer]).sort("enterprise_id")


def _validate_grades(grades: pl.DataFrame) -> pl.DataFrame:
    """Check a grades frame against the contract and return it with exactly the stored columns."""
    missing = [c for c in GRADES_SCHEMA if c not in grades.columns]
    if missing:
        raise FatalInputError(f"grades frame: missing column(s) {', '.join(missing)}")
    try:
        frame = grades.select([pl.col(c).cast(t) for c, t in GRADES_SCHEMA.items()])
    except pl.exceptions.PolarsError as exc:
        raise FatalInputError(f"grades frame: a column has the wrong type: {exc}") from exc
    frame = frame.with_row_index("_row")
    checks: list[tuple[str, str, pl.Expr]] = [
        ("enterprise_id", "must not be empty", pl.col("enterprise_id").is_null()
         | (pl.col("enterprise_id").str.len_chars() == 0)),
        ("as_of", "must not be null", pl.col("as_of").is_null()),
        ("grade", f"must be one of {'/'.join(GRADES)}", ~pl.col("grade").is_in(GRADES)
         | pl.col("grade").is_null()),
        ("model_grade", f"must be one of {'/'.join(GRADES)}", ~pl.col("model_grade").is_in(GRADES)
         | pl.col("model_grade").is_null()),
        ("score", "must be an integer in 0..1000", ~pl.col("score").is_between(0, 1000)
         | pl.col("score").is_null()),
        ("probability", "must be in [0, 1]", ~pl.col("probability").is_between(0.0, 1.0)
         | pl.col("probability").is_null()),
        ("enterprise_id", "must be unique per as_of",
         pl.struct("enterprise_id", "as_of").is_duplicated()),
    ]
    for column, rule, bad in checks:
        hit = frame.filter(bad).head(1)
        if hit.height:
            row = hit.row(0, named=True)
            raise FatalInputError(
                f"grades frame: row {row['_row']}, column {column}: {rule}; got {row[column]!r}"
            )
    return frame.drop("_row")


class Store:
    """The serving store at ``path`` (created on first write)."""

    def __init__(self, path: Path, *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._lock = _process_lock(self.path)
        self._schema_ready = False

    # --- connections ------------------------------------------------------------------------

    @contextmanager
    def _connect(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A short-lived connection; ``None`` when reading a store that does not exist yet."""
        with self._lock:
            if not write and not self.path.exists():
                yield None
                return
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.01
            while True:
                try:
                    con = duckdb.connect(str(self.path), read_only=not write)
                    break
                except (duckdb.IOException, duckdb.ConnectionException) as exc:
                    if not _is_lock_error(exc):
                        raise RiskEngineError(f"{self.path}: cannot open the store: {exc}") from exc
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"{self.path}: the store is locked by another process "
                            f"(waited {self.lock_timeout:.0f} s); try again when it finishes"
                        ) from exc
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
            try:
                if write and not self._schema_ready:
                    con.execute(_DDL)
                    self._schema_ready = True  # once per Store object: the DDL costs every flush
                yield con
            finally:
                con.close()

    @contextmanager
    def _read(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        with self._connect(write=False) as con:
            if con is not None:
                present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
                if not set(_TABLES) <= present:
                    yield None
                    return
            yield con

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect(write=True) as con:
            assert con is not None  # write connections always exist
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def initialise(self) -> None:
        """Create the store file and its tables if they do not exist yet."""
        with self._write():
            pass

    # --- grades -----------------------------------------------------------------------------

    def save_grades(self, grades: pl.DataFrame) -> dict[date, int]:
        """Store a grades frame, replacing every as_of it contains in one transaction.

        Idempotent: saving the same frame twice leaves the store as after the first save.
        Returns the number of rows stored per as_of.
        """
        frame = _validate_grades(grades)
        counts = {d: n for d, n in frame.group_by("as_of").len().iter_rows()}
        if not counts:
            raise FatalInputError("grades frame: no rows to save")
        frame = frame.sort("as_of", "enterprise_id")
        now = utcnow()
        with self._write() as con:
            con.register("_incoming", frame.to_arrow())
            for as_of, n in counts.items():
                versions = frame.filter(pl.col("as_of") == as_of)["model_version"].drop_nulls().unique()
                version = ",".join(sorted(versions.to_list())) or None
                con.execute("DELETE FROM grades WHERE as_of = ?", [as_of])
                con.execute("DELETE FROM grade_runs WHERE as_of = ?", [as_of])
                con.execute("INSERT INTO grade_runs VALUES (?, ?, ?, ?)", [as_of, now, n, version])
            con.execute(f"INSERT INTO grades SELECT {', '.join(GRADES_SCHEMA)} FROM _incoming")
            con.unregister("_incoming")
        return counts

    def grade_dates(self) -> list[date]:
        """Every as_of with stored grades, oldest first."""
        with self._read() as con:
            if con is None:
                return []
            return [r[0] for r in con.execute("SELECT as_of FROM grade_runs ORDER BY as_of").fetchall()]

    def content_version(self) -> tuple[Any, ...]:
        """A cheap fingerprint of the grades and plans stored: it changes whenever grades of any as_of
        or a plan are saved (a running server compares it to decide whether to reload)."""
        with self._read() as con:
            if con is None:
                return ()
            regrades = ", (SELECT max(saved_at) FROM regrades)" if _has_table(con, "regrades") else ""
            row = _first(con, "SELECT (SELECT max(saved_at) FROM grade_runs), (SELECT count(*) FROM "
                              f"grade_runs), (SELECT max(plan_id) FROM plans){regrades}")
        return tuple(row) if row is not None else ()

    def latest_grades(self, as_of: date | None = None) -> pl.DataFrame:
        """The grades of ``as_of`` (default: the latest stored as_of), sorted by enterprise_id.

        The latest grades include enterprises regraded after a decided case since that run was saved
        (``save_regrade``): the served grades. An explicit ``as_of`` gives that run as it was saved.
        """
        explicit = as_of
        with self._read() as con:
            if con is None:
                raise NotFoundError(f"{self.path}: no grades stored yet; run `riskengine score` first")
            if as_of is None:
                row = _first(con, "SELECT max(as_of) FROM grade_runs")
                as_of = row[0] if row else None
                if as_of is None:
                    raise NotFoundError(f"{self.path}: no grades stored yet; run `riskengine score` first")
            frame = _arrow(
                con, f"SELECT {', '.join(GRADES_SCHEMA)} FROM grades WHERE as_of = ? ORDER BY enterprise_id",
                [as_of],
            )
            if explicit is None:
                frame = _overlay_regrades(con, frame, as_of)
        if frame.height == 0:
            raise NotFoundError(f"{self.path}: no grades stored for as_of {as_of}")
        return frame.cast(GRADES_SCHEMA)  # type: ignore[arg-type]

    def grade_history(self, enterprise_id: str) -> pl.DataFrame:
        """Every stored grade of one enterprise, oldest as_of first (empty if none)."""
        with self._read() as con:
            if con is None:
                return pl.DataFrame(schema=GRADES_SCHEMA)
            frame = _arrow(
                con,
                f"SELECT {', '.join(GRADES_SCHEMA)} FROM grades WHERE enterprise_id = ? ORDER BY as_of",
                [enterprise_id],
            )
            if _has_table(con, "regrades"):
                again = _arrow(con, f"SELECT {', '.join(GRADES_SCHEMA)} FROM regrades "
                                    "WHERE enterprise_id = ? ORDER BY saved_at", [enterprise_id])
                both = [frame.cast(GRADES_SCHEMA), again.cast(GRADES_SCHEMA)]  # type: ignore[arg-type]
                frame = pl.concat(both)
        if frame.height == 0:
            return pl.DataFrame(schema=GRADES_SCHEMA)
        return frame.cast(GRADES_SCHEMA).sort("as_of", maintain_order=True)  # type: ignore[arg-type]

    def save_regrade(self, grades: pl.DataFrame, case_id: str | None) -> int:
        """Store enterprises regraded at once after a decided case (grades-frame rows); the latest grades
        serve them until the next full run at or after their as_of. Returns the rows stored."""
        frame = _validate_grades(grades)
        with self._write() as con:
            con.register("_incoming", frame.to_arrow())
            con.execute(f"INSERT INTO regrades SELECT {', '.join(GRADES_SCHEMA)}, ?, ? FROM _incoming",
                        [case_id, utcnow()])
            con.unregister("_incoming")
        return frame.height

    # --- plans ------------------------------------------------------------------------------

    def save_plan(self, plan: pl.DataFrame, meta: Mapping[str, Any]) -> int:
        """Store a plan with its meta (``period`` required), replacing an earlier plan of that period.

        The rows keep whatever columns the planner produced, in their own table ``plan_rows_<id>``,
        so the plan stays queryable with SQL. Returns the new plan id.
        """
        period = meta.get("period")
        if period is None or str(period) == "":
            raise FatalInputError("plan meta: 'period' is required (e.g. '2026-01')")
        period = str(period)
        as_of = meta.get("as_of")
        if isinstance(as_of, str):
            try:
                as_of = date.fromisoformat(as_of)
            except ValueError as exc:
                raise FatalInputError(f"plan meta: as_of must be an ISO date; got {as_of!r}") from exc
        if as_of is not None and not isinstance(as_of, date):
            raise FatalInputError(f"plan meta: as_of must be a date; got {as_of!r}")
        if isinstance(as_of, datetime):
            as_of = as_of.date()
        meta_json = json.dumps(_jsonable(dict(meta)), ensure_ascii=False, default=str)
        with self._write() as con:
            old = con.execute("SELECT plan_id, rows_table FROM plans WHERE period = ?", [period]).fetchall()
            row = _first(con, "SELECT nextval('plan_ids')")
            assert row is not None
            plan_id = int(row[0])
            table = f"plan_rows_{plan_id}"
            con.register("_incoming_plan", plan.to_arrow())
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM _incoming_plan")
            con.unregister("_incoming_plan")
            con.execute(
                "INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?, ?)",
                [plan_id, as_of, period, utcnow(), plan.height, table, meta_json],
            )
            for old_id, old_table in old:
                con.execute("DELETE FROM plans WHERE plan_id = ?", [old_id])
                con.execute(f"DROP TABLE IF EXISTS {old_table}")
        return plan_id

    def plan_periods(self) -> list[str]:
        """The periods with a stored plan, oldest first."""
        with self._read() as con:
            if con is None:
                return []
            return [r[0] for r in con.execute("SELECT period FROM plans ORDER BY period").fetchall()]

    def plans(self) -> list[PlanRecord]:
        """Every stored plan with its rows (one per period)."""
        return [self.plan(p) for p in self.plan_periods()]

    def plan(self, period: str | None = None) -> PlanRecord:
        """The stored plan of ``period`` (default: the latest period)."""
        with self._read() as con:
            if con is None:
                raise NotFoundError(f"{self.path}: no plan stored yet; run `riskengine plan` first")
            if period is None:
                found = _first(
                    con,
                    "SELECT plan_id, as_of, period, saved_at, meta, rows_table FROM plans "
                    "ORDER BY period DESC LIMIT 1"
                )
            else:
                found = _first(
                    con,
                    "SELECT plan_id, as_of, period, saved_at, meta, rows_table FROM plans WHERE period = ?",
                    [period],
                )
            if found is None:
                raise NotFoundError(f"no plan stored for period {period!r}" if period else "no plan stored")
            plan_id, as_of, period_, saved_at, meta, table = found
            rows = _arrow(con, f"SELECT * FROM {table}")
        return PlanRecord(int(plan_id), as_of, period_, saved_at, json.loads(meta) if meta else {}, rows)

    # --- overrides --------------------------------------------------------------------------

    def add_override(
        self, enterprise_id: str, grade: str, reason: str, expires_on: date, created_by: str,
        created_at: datetime | None = None,
    ) -> Override:
        """Record a grade override (the newest active one wins)."""
        if grade not in GRADES:
            raise FatalInputError(f"override grade must be one of {'/'.join(GRADES)}; got {grade!r}")
        if not reason.strip():
            raise FatalInputError("override reason is required")
        created_at = created_at or utcnow()
        with self._write() as con:
            row = _first(con, "SELECT nextval('override_ids')")
            assert row is not None
            override_id = int(row[0])
            con.execute(
                "INSERT INTO overrides (override_id, enterprise_id, grade, reason, expires_on, created_by, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [override_id, enterprise_id, grade, reason, expires_on, created_by, created_at],
            )
        return Override(override_id, enterprise_id, grade, reason, expires_on, created_by, created_at)

    def withdraw_override(
        self, override_id: int, withdrawn_by: str, reason: str, withdrawn_at: datetime, *,
        enterprise_id: str | None = None,
    ) -> Override:
        """Withdraw an override from ``withdrawn_at`` on, recording who and why (nothing is deleted).

        Raises NotFoundError for an unknown id (or one of another enterprise, when ``enterprise_id``
        is given), ConflictError if it was already withdrawn or has expired by ``withdrawn_at``, and
        FatalInputError without a reason. Check and update run in one transaction, so of two
        concurrent withdrawals exactly one succeeds.
        """
        if not reason.strip():
            raise FatalInputError("withdrawing an override needs a reason")
        with self._write() as con:
            row = _first(con, f"SELECT {', '.join(_OVERRIDE_COLUMNS)} FROM overrides WHERE override_id = ?",
                         [override_id])
            if row is None or (enterprise_id is not None and row[1] != enterprise_id):
                raise NotFoundError(f"no override with id {override_id}"
                                    + (f" for enterprise {enterprise_id}" if enterprise_id else ""))
            found = Override(*row)
            if found.withdrawn_at is not None:
                raise ConflictError(f"override {override_id} was already withdrawn at "
                                    f"{found.withdrawn_at:%Y-%m-%d %H:%M} by {found.withdrawn_by}")
            if withdrawn_at.date() >= found.expires_on:
                raise ConflictError(f"override {override_id} expired on {found.expires_on}; "
                                    "there is nothing to withdraw")
            if withdrawn_at < found.created_at:
                raise FatalInputError(f"override {override_id}: withdrawn_at {withdrawn_at} is before "
                                      f"its creation at {found.created_at}")
            con.execute(
                "UPDATE overrides SET withdrawn_at = ?, withdrawn_by = ?, withdraw_reason = ? "
                "WHERE override_id = ?",
                [withdrawn_at, withdrawn_by, reason, override_id],
            )
        return replace(found, withdrawn_at=withdrawn_at, withdrawn_by=withdrawn_by, withdraw_reason=reason)

    def overrides(self, enterprise_id: str | None = None) -> list[Override]:
        """Stored overrides (of one enterprise, or all; withdrawn ones too), oldest first."""
        with self._read() as con:
            if con is None:
                return []
            # A store file from before withdrawals that was never opened for writing since lacks
            # the withdrawal columns (read-only connections cannot add them): read them as NULL.
            present = {r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'overrides'").fetchall()}
            columns = [c if c in present else f"NULL AS {c}" for c in _OVERRIDE_COLUMNS]
            query = f"SELECT {', '.join(columns)} FROM overrides"
            params: list[Any] = []
            if enterprise_id is not None:
                query += " WHERE enterprise_id = ?"
                params.append(enterprise_id)
            rows = con.execute(query + " ORDER BY created_at, override_id", params).fetchall()
        return [Override(*r) for r in rows]

    # --- API keys ---------------------------------------------------------------------------

    def add_key(self, record: KeyRecord) -> None:
        """Store a new key record (its hash only)."""
        with self._write() as con:
            exists = _first(con, "SELECT 1 FROM api_keys WHERE key_id = ?", [record.key_id])
            if exists:
                raise FatalInputError(f"key id {record.key_id} already exists")
            con.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [record.key_id, record.name, record.role, list(record.districts), record.sector,
                 record.key_hash, record.created_at, record.revoked_at],
            )

    def keys(self) -> list[KeyRecord]:
        """Every key record (revoked ones too), oldest first."""
        with self._read() as con:
            if con is None:
                return []
            rows = con.execute(
                "SELECT key_id, name, role, districts, sector, key_hash, created_at, revoked_at "
                "FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        return [
            KeyRecord(r[0], r[1], r[2], tuple(r[3] or ()), r[4], r[5], r[6], r[7]) for r in rows
        ]

    def key(self, key_id: str) -> KeyRecord | None:
        """One key record by id, or None."""
        with self._read() as con:
            if con is None:
                return None
            row = _first(
                con,
                "SELECT key_id, name, role, districts, sector, key_hash, created_at, revoked_at "
                "FROM api_keys WHERE key_id = ?",
                [key_id],
            )
        return None if row is None else KeyRecord(row[0], row[1], row[2], tuple(row[3] or ()), *row[4:])

    def revoke_key(self, key_id: str) -> KeyRecord:
        """Mark a key revoked (it stays listed); raises NotFoundError for an unknown id."""
        with self._write() as con:
            row = _first(con, "SELECT revoked_at FROM api_keys WHERE key_id = ?", [key_id])
            if row is None:
                raise NotFoundError(f"no API key with id {key_id!r}")
            if row[0] is None:
                con.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", [utcnow(), key_id])
        return next(k for k in self.keys() if k.key_id == key_id)

    # --- audit log --------------------------------------------------------------------------

    def append_audit(self, entries: pl.DataFrame | Sequence[Mapping[str, Any]]) -> int:
        """Append audit entries (append-only; an entry_id already stored is skipped, so a retried
        batch is never written twice). Returns the number of rows added."""
        frame = entries if isinstance(entries, pl.DataFrame) else pl.DataFrame(
            list(entries), schema=AUDIT_SCHEMA
        )
        if frame.height == 0:
            return 0
        frame = frame.select([pl.col(c).cast(t) for c, t in AUDIT_SCHEMA.items()])
        with self._write() as con:
            con.register("_incoming_audit", frame.to_arrow())
            before = _first(con, "SELECT count(*) FROM audit_log")
            con.execute(
                f"INSERT INTO audit_log SELECT {', '.join(AUDIT_SCHEMA)} FROM _incoming_audit i "
                # Only entries from the batch's time span can be duplicates: zone maps skip the rest
                # of a long log.
                "WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entry_id = i.entry_id "
                "AND a.occurred_at >= (SELECT min(occurred_at) FROM _incoming_audit))"
            )
            after = _first(con, "SELECT count(*) FROM audit_log")
            con.unregister("_incoming_audit")
        assert before is not None and after is not None
        return int(after[0]) - int(before[0])

    def audit(self, since: date | datetime | None = None) -> pl.DataFrame:
        """Audit entries at or after ``since`` (a date means its start, UTC), oldest first."""
        with self._read() as con:
            if con is None:
                return pl.DataFrame(schema=AUDIT_SCHEMA)
            if isinstance(since, date) and not isinstance(since, datetime):
                since = datetime(since.year, since.month, since.day)
            query = f"SELECT {', '.join(AUDIT_SCHEMA)} FROM audit_log"
            params: list[Any] = []
            if since is not None:
                query += " WHERE occurred_at >= ?"
                params.append(since)
            frame = _arrow(con, query + " ORDER BY occurred_at, entry_id", params)
        if frame.height == 0:
            return pl.DataFrame(schema=AUDIT_SCHEMA)
        return frame.cast(AUDIT_SCHEMA)  # type: ignore[arg-type]
