"""The credit lists (经营异常名录, 严重违法失信名单): on a list now, how long, how often listed.

A list entry *counts as of D* (shared/CONTRACT.md section 2) while it is visible (``listed_on`` and
``recorded_on`` before D) and not yet removed: ``removed_on`` is null or ``removed_on >= D`` (the
removal takes effect on its day, so as of the removal day itself the entry still counts).
A later removal record (``list_removals``, e.g. an approved credit repair) ends the entry the same way
once it is visible (``removed_on`` and its ``recorded_on`` before D).
The older ``penalties.dishonest_list`` flag is the penalty family's (``penalties__dishonest_active``);
the hard rules read both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof
from features.asof import AS_OF, KEY
from features.exprs import count_if
from features.family import Family

EVENT_DATE = "listed_on"
LISTS = ("abnormal_operation", "serious_dishonest")
SHORT = {"abnormal_operation": "abnormal", "serious_dishonest": "serious"}
_REMOVED = "_removal_visible_from"


def build(tables: Mapping[str, pl.LazyFrame], keys: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """List features for every (enterprise_id, as_of) with a visible list entry."""
    # Entries are few per enterprise and an abnormal listing can stay for years: pair with every later D.
    removals = tables["list_removals"].group_by("entry_id").agg(
        asof.visible_from("removed_on").min().alias(_REMOVED))
    entries = tables["list_entries"].join(removals, on="entry_id", how="left")
    pairs = asof.window(entries, EVENT_DATE, as_of, None)
    listed = ~asof.known("removed_on") & ~asof.known(_REMOVED)  # not removed before D
    days = asof.days_since(EVENT_DATE)
    aggs = [
        count_if(listed & (pl.col("list") == name)).clip(0, 1).alias(f"lists__{SHORT[name]}_now")
        for name in LISTS
    ]
    aggs += [
        count_if(listed).alias("lists__listed_now"),
        pl.when(listed).then(days).max().alias("lists__days_listed"),
        pl.when(listed & (pl.col("list") == "abnormal_operation")).then(days).max()
        .alias("lists__abnormal_days_listed"),
        count_if(asof.within(1095)).alias("lists__listings_1095d"),
        count_if(asof.within(1095) & (pl.col("list") == "serious_dishonest")).alias("lists__serious_1095d"),
    ]
    return pairs.group_by(KEY, AS_OF).agg(aggs)


FAMILY = Family("lists", "list_entries", lambda i: build(i.tables, i.keys, i.dates))
