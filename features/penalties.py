"""Administrative penalties: counts within their influence period, fines, the dishonesty list.

Influence periods (SAMR Order 107, 2025; shared/CONTRACT.md section 2), calendar months via
``offset_by``:

* ``minor``: 3 months from ``decided_on``;
* ``moderate``: 1 year, ended early by a credit repair, but not before 3 months;
* ``serious``: 3 years, ended early by a credit repair, but not before 1 year.

A penalty *counts as of D* iff it is visible (decided and recorded before D) and
``decided_on + period > D``: on the day the period ends it no longer counts. A credit repair ends it
early iff the repair itself is visible as of D (``repaired_on`` and its ``recorded_on`` before D) and
``decided_on + minimum period <= D``. ``dishonest_list`` holds while the penalty counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof
from features.asof import AS_OF, KEY
from features.exprs import count_if, sum_if
from features.family import Family

EVENT_DATE = "decided_on"
# severity -> (full period, minimum period when repaired)
INFLUENCE = {"minor": ("3mo", "3mo"), "moderate": ("1y", "3mo"), "serious": ("3y", "1y")}
# Longest influence period in days (3 calendar years hold at most 1096 days), for the window.
LOOKBACK_DAYS = 1100
_REPAIR_VISIBLE = "_repair_visible_from"


def _offset(kind: int) -> pl.Expr:
    """decided_on + the full (kind=0) or minimum (kind=1) influence period of the row's severity."""
    expr = pl.lit(None, dtype=pl.Date)
    for sev, periods in INFLUENCE.items():
        expr = (
            pl.when(pl.col("severity") == sev)
            .then(pl.col(EVENT_DATE).dt.offset_by(periods[kind]))
            .otherwise(expr)
        )
    return expr


def build(tables: Mapping[str, pl.LazyFrame], keys: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """Penalty features for every (enterprise_id, as_of) with a penalty in the last 1100 days."""
    repairs = (
        tables["credit_repairs"]
        .group_by("case_id")
        .agg(asof.visible_from("repaired_on").min().alias(_REPAIR_VISIBLE))
    )
    pen = tables["penalties"].join(repairs, on="case_id", how="left")
    pairs = asof.window(pen, EVENT_DATE, as_of, LOOKBACK_DAYS).with_columns(
        _offset(0).alias("_end"), _offset(1).alias("_min_end")
    )
    repaired = asof.known(_REPAIR_VISIBLE)
    ended_by_repair = repaired & ~asof.in_effect(pl.col("_min_end"))
    active = asof.in_effect(pl.col("_end")) & ~ended_by_repair
    sev = pl.col("severity")
    in365 = asof.within(365)
    aggs = [count_if(active & (sev == s)).alias(f"penalties__{s}_active") for s in INFLUENCE]
    aggs += [count_if(in365 & (sev == s)).alias(f"penalties__{s}_365d") for s in INFLUENCE]
    aggs += [
        count_if(active).alias("penalties__active"),
        count_if(active & pl.col("dishonest_list")).clip(0, 1).alias("penalties__dishonest_active"),
        sum_if(active, pl.col("fine_cny")).cast(pl.Float64).alias("penalties__fine_cny_active"),
        sum_if(in365, pl.col("fine_cny")).cast(pl.Float64).alias("penalties__fine_cny_365d"),
        count_if(asof.within(1095)).alias("penalties__count_1095d"),
        count_if(asof.within(1095) & repaired).alias("penalties__repaired_1095d"),
    ]
    return pairs.group_by(KEY, AS_OF).agg(aggs)


FAMILY = Family("penalties", "penalties", lambda i: build(i.tables, i.keys, i.dates))
