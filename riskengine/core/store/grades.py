"""Grades: one frame per as_of, replaced whole in one transaction (readers never see a mix)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import duckdb
import polars as pl

from riskengine.core.contract import GRADES, GRADES_SCHEMA
from riskengine.core.errors import FatalInputError, NotFoundError
from riskengine.core.store.base import StoreBase, _arrow, _first, utcnow


class GradeStore(StoreBase):
    DDL = """
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
-- Not in TABLES: a store written before regrades existed still reads.
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
"""
    TABLES = ("grades", "grade_runs")

    def save_grades(self, grades: pl.DataFrame) -> dict[date, int]:
        """Store a grades frame, replacing every as_of it contains in one transaction.

        Idempotent: saving the same frame twice leaves the store as after the first save.
        Returns the number of rows stored per as_of.
        """
        return self.save_grades_chunks([grades])

    def save_grades_chunks(self, chunks: Iterable[pl.DataFrame]) -> dict[date, int]:
        """``save_grades`` of the grades frame made of ``chunks`` (e.g. the parts of a cluster run),
        holding one chunk in memory at a time; still one transaction, and an enterprise twice in an
        as_of across chunks is refused like within one."""
        counts: dict[date, int] = {}
        versions: dict[date, set[str]] = {}
        now = utcnow()
        n_chunks = 0
        with self._write() as con:
            for chunk in chunks:
                n_chunks += 1
                frame = _validate_grades(chunk)
                for as_of, n in frame.group_by("as_of").len().iter_rows():
                    if as_of not in counts:
                        con.execute("DELETE FROM grades WHERE as_of = ?", [as_of])
                        con.execute("DELETE FROM grade_runs WHERE as_of = ?", [as_of])
                        counts[as_of], versions[as_of] = 0, set()
                    counts[as_of] += n
                    mine = frame.filter(pl.col("as_of") == as_of)["model_version"].drop_nulls().unique()
                    versions[as_of] |= set(mine.to_list())
                if frame.height == 0:
                    continue
                con.register("_incoming", frame.sort("as_of", "enterprise_id").to_arrow())
                con.execute(f"INSERT INTO grades SELECT {', '.join(GRADES_SCHEMA)} FROM _incoming")
                con.unregister("_incoming")
            if not counts:
                raise FatalInputError("grades frame: no rows to save")
            # One chunk was checked whole (``_validate_grades``); several are checked once stored.
            twice = None if n_chunks == 1 else con.execute(
                "SELECT enterprise_id, as_of FROM grades WHERE as_of IN (SELECT unnest(?)) "
                "GROUP BY enterprise_id, as_of HAVING count(*) > 1 LIMIT 1", [list(counts)]).fetchone()
            if twice is not None:
                raise FatalInputError(f"grades frame: enterprise_id must be unique per as_of; "
                                      f"{twice[0]!r} is there twice as of {twice[1]}")
            for as_of, n in counts.items():
                version = ",".join(sorted(versions[as_of])) or None
                con.execute("INSERT INTO grade_runs VALUES (?, ?, ?, ?)", [as_of, now, n, version])
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

    def former_enterprises(self, latest: date | None) -> dict[str, tuple[str | None, str | None]]:
        """Enterprises graded before but not in the grades of ``latest``: id -> (district, sector) of
        their last grade (so a server can check scope without asking the store per request)."""
        with self._read() as con:
            if con is None:
                return {}
            rows = con.execute(
                "SELECT enterprise_id, arg_max(district, as_of), arg_max(sector, as_of) FROM grades "
                "WHERE enterprise_id NOT IN (SELECT enterprise_id FROM grades WHERE as_of = ?) "
                "GROUP BY enterprise_id", [latest]).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

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


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(_first(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name])[0])


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
