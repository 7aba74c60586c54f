"""Mandatory plan items: follow-ups of failures, open complaint leads, minimum frequency due, and
items carried over from the previous plan (rule 1 of ``riskengine.supervision.plan``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from riskengine.core.contract import STATUS_OVER
from riskengine.core.timerule import add_months, known_before, period_of
from riskengine.lake.layout import table_of
from riskengine.supervision.policy import Policy

# ``pl.format`` templates: each ``{}`` takes the next argument, so the values repeat for each language.
WHY_FOLLOW_UP = "上期检查不合格复查（{}） / follow-up of a failed inspection on {}"


WHY_COMPLAINT = "上期投诉举报线索（{}件） / open complaint lead ({})"


WHY_CARRIED = "上期（{}）超出检查能力未安排，顺延 / carried over from {}: not scheduled (over capacity)"


WHY_MIN = ("最低检查频次到期（近12个月{}次，应不少于{}次） / "
           "minimum frequency due ({} in 12 months, at least {} required)")


@dataclass(frozen=True)
class CarryOver:
    """The previous period's plan items listed over capacity: carried into this period unless visited."""

    period: str  # the previous plan's period label, e.g. "2025-12"
    period_start: date  # inspections on or after this day (known before as_of) count as the visit
    enterprise_ids: tuple[str, ...]

    @classmethod
    def from_plan(cls, rows: pl.DataFrame, meta: Mapping[str, Any]) -> CarryOver:
        """From a stored plan (rows with ``stratum`` and ``status``, meta with period and start)."""
        over = rows.filter((pl.col("stratum") == "mandatory") & (pl.col("status") == STATUS_OVER))
        return cls(str(meta["period"]), date.fromisoformat(str(meta["period_start"])),
                   tuple(sorted(over.get_column("enterprise_id").unique().to_list())))

    def to_meta(self) -> dict[str, Any]:
        return {"period": self.period, "period_start": self.period_start.isoformat(),
                "enterprise_ids": list(self.enterprise_ids)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> CarryOver:
        return cls(str(meta["period"]), date.fromisoformat(str(meta["period_start"])),
                   tuple(meta["enterprise_ids"]))


def mandatory_items(population: pl.DataFrame, tables: Mapping[str, pl.LazyFrame], as_of: date,
                    policy: Policy, carry_over: CarryOver | None = None,
                    warning_items: pl.DataFrame | None = None) -> pl.DataFrame:
    """enterprise_id, why, urgent for every enterprise with a mandatory item (rules in module doc).

    ``warning_items`` (enterprise_id, why): early warnings left unacknowledged past the policy's
    limit (issue 14), listed first and urgent, with the warning as the reason."""
    start, end = period_of(as_of)
    previous = add_months(as_of, -1)
    window = add_months(end, -12)
    inspections = known_before(table_of(tables, "inspections"), "inspected_on", as_of).select(
        "inspection_id", "enterprise_id", "inspected_on", "outcome").collect()
    complaints = known_before(table_of(tables, "complaints"), "received_on", as_of).filter(
        pl.col("received_on") >= previous).select("enterprise_id", "received_on", "substantiated").collect()
    ids = population.select("enterprise_id")

    last = inspections.sort("inspected_on", "inspection_id").unique("enterprise_id", keep="last")
    failed = pl.col("outcome").is_in(["fail", "conditional"])
    follow = last.filter(failed & (pl.col("inspected_on") >= previous))
    follow = follow.join(ids, on="enterprise_id").select(
        "enterprise_id",
        pl.format(WHY_FOLLOW_UP, pl.col("inspected_on").dt.to_string("%Y-%m-%d"),
                  pl.col("inspected_on").dt.to_string("%Y-%m-%d")).alias("why"),
        pl.lit(True).alias("urgent"), pl.lit(0).alias("order"),
    )

    leads = (
        complaints.filter(pl.col("substantiated").fill_null(True))
        .join(last.select("enterprise_id", pl.col("inspected_on").alias("last_on")), on="enterprise_id",
              how="left")
        .filter(pl.col("last_on").is_null() | (pl.col("last_on") < pl.col("received_on")))
        .group_by("enterprise_id").agg(pl.len().alias("n"))
        .join(ids, on="enterprise_id")
        .select("enterprise_id", pl.format(WHY_COMPLAINT, "n", "n").alias("why"),
                pl.lit(True).alias("urgent"), pl.lit(1).alias("order"))
    )

    counts = inspections.filter(pl.col("inspected_on") >= window).group_by("enterprise_id").agg(
        pl.len().alias("k"))
    due = (
        policy.assign(population.select("enterprise_id", "sector", "grade"))
        .filter(pl.col("min_per_year") > 0)
        .join(counts, on="enterprise_id", how="left")
        .with_columns(pl.col("k").fill_null(0).cast(pl.Int64))
        .filter(pl.col("k") < pl.col("min_per_year"))
        .select("enterprise_id", pl.format(WHY_MIN, "k", "min_per_year", "k", "min_per_year").alias("why"),
                pl.lit(False).alias("urgent"), pl.lit(2).alias("order"))
    )
    parts = [follow, leads, due]
    if carry_over is not None and carry_over.enterprise_ids:
        visited = inspections.filter(pl.col("inspected_on") >= carry_over.period_start)
        carried = (
            pl.DataFrame({"enterprise_id": list(carry_over.enterprise_ids)}, schema={"enterprise_id": str})
            .join(visited.select("enterprise_id"), on="enterprise_id", how="anti")
            .join(ids, on="enterprise_id")
            .select("enterprise_id",
                    pl.format(WHY_CARRIED, pl.lit(carry_over.period), pl.lit(carry_over.period)).alias("why"),
                    pl.lit(True).alias("urgent"), pl.lit(-1).alias("order"))
        )
        parts.insert(0, carried)
    if warning_items is not None and warning_items.height:
        parts.insert(0, warning_items.select(pl.col("enterprise_id").cast(pl.String),
                                             pl.col("why").cast(pl.String))
                     .join(ids, on="enterprise_id")
                     .with_columns(pl.lit(True).alias("urgent"), pl.lit(-2).alias("order")))
    items = pl.concat(parts).with_columns(pl.col("order").cast(pl.Int32))
    return (
        items.sort("enterprise_id", "order")
        .group_by("enterprise_id", maintain_order=True)
        .agg(pl.col("why").str.join("；"), pl.col("urgent").any())
    )
