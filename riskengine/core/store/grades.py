"""Grades: one frame per as_of, replaced whole in one transaction (readers never see a mix)."""

from __future__ import annotations

from datetime import date
from typing import Any

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
            row = _first(con, "SELECT (SELECT max(saved_at) FROM grade_runs), "
                              "(SELECT count(*) FROM grade_runs), (SELECT max(plan_id) FROM plans)")
        return tuple(row) if row is not None else ()

    def latest_grades(self, as_of: date | None = None) -> pl.DataFrame:
        """The grades of ``as_of`` (default: the latest stored as_of), sorted by enterprise_id."""
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
        if frame.height == 0:
            return pl.DataFrame(schema=GRADES_SCHEMA)
        return frame.cast(GRADES_SCHEMA)  # type: ignore[arg-type]


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
