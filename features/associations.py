"""Associations through ``legal_rep_id``: enterprises sharing a legal representative.

For an enterprise and D: the other enterprises with the same legal representative that exist as of
D, their adverse events in the last 365 days (``severity__adverse_365d`` summed), and whether any of
them is on the dishonesty list as of D. An enterprise without a ``legal_rep_id`` has no associates.
"""

from __future__ import annotations

import polars as pl

from features.asof import AS_OF

REP = "legal_rep_id"


def columns() -> list[pl.Expr]:
    """Association features as window expressions over (legal_rep_id, as_of) of the assembled frame
    (which needs ``legal_rep_id``, ``severity__adverse_365d`` and ``penalties__dishonest_active``)."""
    own_adv = pl.col("severity__adverse_365d")
    own_dis = pl.col("penalties__dishonest_active")
    has_rep = pl.col(REP).is_not_null()
    group = [REP, AS_OF]
    return [
        pl.when(has_rep)
        .then(pl.len().over(group) - 1)
        .otherwise(0)
        .cast(pl.Int64)
        .alias("associations__count"),
        pl.when(has_rep)
        .then(own_adv.sum().over(group) - own_adv)
        .otherwise(0)
        .cast(pl.Int64)
        .alias("associations__adverse_365d"),
        pl.when(has_rep)
        .then(own_dis.sum().over(group) - own_dis > 0)
        .otherwise(False)
        .cast(pl.Int64)
        .alias("associations__dishonest_active"),
    ]
