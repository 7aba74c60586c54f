"""Small expression helpers shared by the feature families (nothing time-related: see ``asof``)."""

from __future__ import annotations

import polars as pl


def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den, null (not NaN) when there is nothing to divide."""
    return pl.when(den > 0).then(num / den)


def count_if(cond: pl.Expr) -> pl.Expr:
    """How many rows of a group meet ``cond`` (an Int64, nulls counting as False)."""
    return cond.fill_null(False).sum().cast(pl.Int64)


def sum_if(cond: pl.Expr, value: pl.Expr) -> pl.Expr:
    """Sum of ``value`` (nulls as 0) over the rows of a group that meet ``cond``."""
    return pl.when(cond.fill_null(False)).then(value.fill_null(0)).otherwise(0).sum()
