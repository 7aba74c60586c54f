"""Credit commitments (信用承诺): open ones, breaches, the next due day.

The lake keeps a commitment's *current* status and the day it took effect (``status_changed_on``),
as for licences: as of D a visible commitment (``made_on`` and ``recorded_on`` before D) has status
``status`` if ``status_changed_on < D``, else it was still ``open``. A commitment is breached as of D
once ``status = breached`` and ``status_changed_on < D`` (shared/CONTRACT.md section 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof
from features.asof import AS_OF, KEY
from features.exprs import count_if
from features.family import Family

EVENT_DATE = "made_on"


def build(tables: Mapping[str, pl.LazyFrame], keys: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """Commitment features for every (enterprise_id, as_of) with a visible commitment."""
    pairs = asof.window(tables["commitments"], EVENT_DATE, as_of, None)
    status = pl.when(asof.known("status_changed_on")).then(pl.col("status")).otherwise(pl.lit("open"))
    is_open = status == "open"
    breached = status == "breached"
    recent = breached & (asof.days_since("status_changed_on") <= 365)
    due_ahead = is_open & pl.col("due_on").is_not_null() & ~asof.known("due_on")
    return pairs.group_by(KEY, AS_OF).agg(
        count_if(is_open).alias("commitments__open"),
        count_if(is_open & asof.known("due_on")).alias("commitments__open_overdue"),
        count_if(breached).alias("commitments__breached"),
        count_if(recent).alias("commitments__breached_365d"),
        count_if(recent & (pl.col("kind") == "notification"))
        .alias("commitments__notification_breached_365d"),
        pl.when(due_ahead).then(asof.days_until("due_on")).min().alias("commitments__days_to_due"),
    )


FAMILY = Family("commitments", "commitments", lambda i: build(i.tables, i.keys, i.dates))
