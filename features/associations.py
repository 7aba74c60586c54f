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


_N, _ADV, _DIS = "_rep_n", "_rep_adverse", "_rep_dishonest"


def totals(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Per (legal_rep_id, as_of): enterprises, adverse events and dishonest listings of ``frame``.

    Totals of several parts of the enterprises add up (``combine``) to the whole city's.
    """
    return (frame.filter(pl.col(REP).is_not_null())
            .group_by(REP, AS_OF)
            .agg(pl.len().cast(pl.Int64).alias(_N),
                 pl.col("severity__adverse_365d").sum().cast(pl.Int64).alias(_ADV),
                 pl.col("penalties__dishonest_active").sum().cast(pl.Int64).alias(_DIS)))


def combine(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The whole city's totals from the totals of its parts."""
    if not parts:
        return pl.DataFrame(schema={REP: pl.String, AS_OF: pl.Date, _N: pl.Int64, _ADV: pl.Int64,
                                    _DIS: pl.Int64})
    return (pl.concat(parts).group_by(REP, AS_OF)
            .agg(pl.col(_N).sum(), pl.col(_ADV).sum(), pl.col(_DIS).sum())
            .sort(REP, AS_OF))


def from_totals() -> list[pl.Expr]:
    """The association features of ``columns`` from joined totals (``totals`` + ``combine``)."""
    own_adv = pl.col("severity__adverse_365d")
    own_dis = pl.col("penalties__dishonest_active")
    has_rep = pl.col(REP).is_not_null() & pl.col(_N).is_not_null()
    return [
        pl.when(has_rep).then(pl.col(_N) - 1).otherwise(0).cast(pl.Int64).alias("associations__count"),
        pl.when(has_rep).then(pl.col(_ADV) - own_adv).otherwise(0).cast(pl.Int64)
        .alias("associations__adverse_365d"),
        pl.when(has_rep).then(pl.col(_DIS) - own_dis > 0).otherwise(False).cast(pl.Int64)
        .alias("associations__dishonest_active"),
    ]
