"""Associations through ``legal_rep_id``: enterprises sharing a legal representative.

For an enterprise and D: the other enterprises with the same legal representative that exist as of
D, their adverse events in the last 365 days (``severity__adverse_365d`` summed), whether any of
them is on the dishonesty list as of D, and their time-decayed severity index (``severity__index``)
summed and per associate (a representative's record weighs on each enterprise they run). An
enterprise without a ``legal_rep_id`` has no associates.
"""

from __future__ import annotations

import polars as pl

from features.asof import AS_OF

REP = "legal_rep_id"


def columns() -> list[pl.Expr]:
    """Association features as window expressions over (legal_rep_id, as_of) of the assembled frame
    (which needs ``legal_rep_id``, ``severity__adverse_365d``, ``severity__index`` and
    ``penalties__dishonest_active``)."""
    group = [REP, AS_OF]
    return _features(pl.col(REP).is_not_null(), pl.len().over(group),
                     pl.col("severity__adverse_365d").sum().over(group),
                     pl.col("penalties__dishonest_active").sum().over(group),
                     pl.col("severity__index").fill_null(0.0).sum().over(group))


def _features(has_rep: pl.Expr, n: pl.Expr, adverse: pl.Expr, dishonest: pl.Expr, index: pl.Expr
              ) -> list[pl.Expr]:
    """The association features from the representative's totals (the enterprise's own included)."""
    own_adv = pl.col("severity__adverse_365d")
    own_dis = pl.col("penalties__dishonest_active")
    own_sev = pl.col("severity__index").fill_null(0.0)
    others_index = index - own_sev
    return [
        pl.when(has_rep).then(n - 1).otherwise(0).cast(pl.Int64).alias("associations__count"),
        pl.when(has_rep).then(adverse - own_adv).otherwise(0).cast(pl.Int64)
        .alias("associations__adverse_365d"),
        pl.when(has_rep).then(dishonest - own_dis > 0).otherwise(False).cast(pl.Int64)
        .alias("associations__dishonest_active"),
        pl.when(has_rep).then(others_index).otherwise(0.0).cast(pl.Float64).alias("associations__severity_index"),
        pl.when(has_rep & (n > 1)).then(others_index / (n - 1)).cast(pl.Float64)
        .alias("associations__severity_mean"),
    ]


_N, _ADV, _DIS, _SEV = "_rep_n", "_rep_adverse", "_rep_dishonest", "_rep_severity"


def totals(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Per (legal_rep_id, as_of): enterprises, adverse events, dishonest listings and severity index of
    ``frame``.

    Totals of several parts of the enterprises add up (``combine``) to the whole city's.
    """
    return (frame.filter(pl.col(REP).is_not_null())
            .group_by(REP, AS_OF)
            .agg(pl.len().cast(pl.Int64).alias(_N),
                 pl.col("severity__adverse_365d").sum().cast(pl.Int64).alias(_ADV),
                 pl.col("penalties__dishonest_active").sum().cast(pl.Int64).alias(_DIS),
                 pl.col("severity__index").fill_null(0.0).sum().cast(pl.Float64).alias(_SEV)))


def combine(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The whole city's totals from the totals of its parts."""
    if not parts:
        return pl.DataFrame(schema={REP: pl.String, AS_OF: pl.Date, _N: pl.Int64, _ADV: pl.Int64,
                                    _DIS: pl.Int64, _SEV: pl.Float64})
    return (pl.concat(parts).group_by(REP, AS_OF)
            .agg(pl.col(_N).sum(), pl.col(_ADV).sum(), pl.col(_DIS).sum(), pl.col(_SEV).sum())
            .sort(REP, AS_OF))


def from_totals() -> list[pl.Expr]:
    """The association features of ``columns`` from joined totals (``totals`` + ``combine``)."""
    has_rep = pl.col(REP).is_not_null() & pl.col(_N).is_not_null()
    return _features(has_rep, pl.col(_N), pl.col(_ADV), pl.col(_DIS), pl.col(_SEV))
