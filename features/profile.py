"""Profile: age, registered capital, sector, district and (current) registration status."""

from __future__ import annotations

import polars as pl

from features import asof


def build(frame: pl.LazyFrame) -> pl.LazyFrame:
    """``frame`` (keyed rows with the enterprises table's columns) with the profile features added.

    ``profile__status`` is the status in the lake today: the enterprises table has no status date,
    so it is marked ``point_in_time=False`` in the catalog and left out of ``MODEL_FEATURES``.
    """
    return frame.with_columns(
        asof.days_since("established_on").alias("profile__age_days"),
        pl.col("registered_capital").cast(pl.Float64).alias("profile__registered_capital"),
        pl.col("sector").cast(pl.String).alias("profile__sector"),
        pl.col("district").cast(pl.String).alias("profile__district"),
        pl.col("status").cast(pl.String).alias("profile__status"),
    )
