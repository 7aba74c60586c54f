"""Associations through ``legal_rep_id``: enterprises sharing a legal representative.

For an enterprise and D: the other enterprises with the same legal representative that exist as of
D, their adverse events in the last 365 days (``severity__adverse_365d`` summed), and whether any of
them is on the dishonesty list as of D. An enterprise without a ``legal_rep_id`` has no associates.
"""

from __future__ import annotations

import polars as pl

from features.asof import AS_OF, KEY

REP = "legal_rep_id"


def build(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Association features from the assembled per-enterprise frame (needs ``legal_rep_id``,
    ``severity__adverse_365d`` and ``penalties__dishonest_active``), keyed (enterprise_id, as_of)."""
    own_adv = pl.col("severity__adverse_365d")
    own_dis = pl.col("penalties__dishonest_active")
    per_rep = (
        frame.filter(pl.col(REP).is_not_null())
        .group_by(REP, AS_OF)
        .agg(pl.len().cast(pl.Int64).alias("_n"), own_adv.sum().alias("_adv"), own_dis.sum().alias("_dis"))
    )
    return frame.join(per_rep, on=[REP, AS_OF], how="left").select(
        KEY,
        AS_OF,
        (pl.col("_n") - 1).fill_null(0).cast(pl.Int64).alias("associations__count"),
        (pl.col("_adv") - own_adv).fill_null(0).cast(pl.Int64).alias("associations__adverse_365d"),
        ((pl.col("_dis") - own_dis).fill_null(0) > 0).cast(pl.Int64).alias("associations__dishonest_active"),
    )
