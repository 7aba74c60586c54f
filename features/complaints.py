"""12315 complaints and reports: counts, substantiated share and a 90-day trend.

Trend = complaints of the last 90 days minus the 90-day rate of the 275 days before them
(``count_90d - (count_365d - count_90d) * 90 / 275``): positive when complaints are picking up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof
from features.asof import AS_OF, KEY
from features.exprs import count_if, ratio
from features.family import Family

EVENT_DATE = "received_on"


def build(tables: Mapping[str, pl.LazyFrame], keys: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """Complaint features for every (enterprise_id, as_of) with a complaint in the last 1095 days."""
    pairs = asof.window(tables["complaints"], EVENT_DATE, as_of, 1095)
    year = asof.within(365)
    n90 = count_if(asof.within(90))
    n365 = count_if(year)
    subst = count_if(pl.col("substantiated") & year)
    return pairs.group_by(KEY, AS_OF).agg(
        n90.alias("complaints__count_90d"),
        n365.alias("complaints__count_365d"),
        subst.alias("complaints__substantiated_365d"),
        pl.len().cast(pl.Int64).alias("complaints__count_1095d"),
        count_if(pl.col("substantiated")).alias("complaints__substantiated_1095d"),
        # Share among complaints whose outcome is recorded (null substantiated = not yet decided).
        ratio(subst, count_if(pl.col("substantiated").is_not_null() & year)).alias(
            "complaints__substantiated_share_365d"
        ),
        (n90 - (n365 - n90) * 90.0 / 275.0).alias("complaints__trend_90d"),
    )


FAMILY = Family("complaints", "complaints", lambda i: build(i.tables, i.keys, i.dates))
