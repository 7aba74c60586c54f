"""Profile: age, registered capital, sector, district and (current) registration status."""

from __future__ import annotations

import polars as pl

from features import asof
from features.asof import AS_OF, KEY


def build(keys: pl.LazyFrame) -> pl.LazyFrame:
    """Profile features for every (enterprise_id, as_of) of ``keys`` (the population with its columns).

    ``profile__status`` is the status in the lake today: the enterprises table has no status date,
    so it is marked ``point_in_time=False`` in the catalog and left out of ``MODEL_FEATURES``.
    """
    return keys.select(
        KEY,
        AS_OF,
        asof.days_since("established_on").alias("profile__age_days"),
        pl.col("registered_capital").cast(pl.Float64).alias("profile__registered_capital"),
        pl.col("sector").cast(pl.String).alias("profile__sector"),
        pl.col("district").cast(pl.String).alias("profile__district"),
        pl.col("status").cast(pl.String).alias("profile__status"),
    )
