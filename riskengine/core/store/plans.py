"""Plans: one per period, its rows in their own table ``plan_rows_<id>`` (queryable with SQL)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import polars as pl

from riskengine.core.errors import FatalInputError, NotFoundError
from riskengine.core.files import jsonable
from riskengine.core.records import PlanRecord
from riskengine.core.store.base import StoreBase, _arrow, _first, utcnow


class PlanStore(StoreBase):
    DDL = """
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
"""
    TABLES = ("plans",)

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
        meta_json = json.dumps(jsonable(dict(meta)), ensure_ascii=False)
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

    def random_draw(self, period: str) -> pl.DataFrame | None:
        """The 双随机 draw of ``period``'s stored plan: ``enterprise_id`` and ``inclusion_probability``
        of its random-stratum rows; None when the plan did not record them."""
        rows = self.plan(period).rows
        if not {"stratum", "inclusion_probability", "enterprise_id"} <= set(rows.columns):
            return None
        return rows.filter(pl.col("stratum") == "random").select("enterprise_id", "inclusion_probability")
