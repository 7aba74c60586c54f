"""``build_features``: every family joined onto the population of (enterprise_id, as_of)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import (
    asof,
    associations,
    complaints,
    inspections,
    licenses,
    penalties,
    profile,
    recalls,
    sampling,
    severity,
)
from features.asof import AS_OF, KEY
from features.catalog import FEATURES, FeatureSpec
from riskengine.contract import TABLES

_DTYPES: dict[str, pl.DataType] = {"int": pl.Int64(), "float": pl.Float64(), "str": pl.String()}


def _conform(tables: Mapping[str, pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    """Every contract table with exactly its contract columns (absent tables and columns as nulls)."""
    out: dict[str, pl.LazyFrame] = {}
    for name, spec in TABLES.items():
        frame = tables.get(name)
        if frame is None:
            out[name] = pl.LazyFrame(schema=spec.schema)
            continue
        have = frame.collect_schema().names()
        out[name] = frame.select(
            [(pl.col(c) if c in have else pl.lit(None)).cast(t).alias(c) for c, t in spec.schema.items()]
        )
    return out


def _finish(spec: FeatureSpec) -> pl.Expr:
    col = pl.col(spec.name).cast(_DTYPES[spec.dtype])
    if spec.fill is not None:
        col = col.fill_null(pl.lit(spec.fill).cast(_DTYPES[spec.dtype]))
    return col.alias(spec.name)


def build_features(
    tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date], *, half_life_days: float = 180.0
) -> pl.LazyFrame:
    """One row per enterprise established before each as_of date, with every feature of ``FEATURES``.

    ``tables`` are lazy frames with the contract schema (``riskengine.lake.load_tables``); missing or
    empty tables are fine. Every feature uses only records visible before its as_of (``features.asof``).
    The result is lazy and sorted by (as_of, enterprise_id); collect it once.
    """
    dates_list = sorted(set(as_of))
    dates = asof.as_of_frame(dates_list)
    severity.check_half_life(half_life_days, dates_list)
    t = _conform(tables)
    keys = asof.population(t["enterprises"], dates)
    ids = [KEY, AS_OF]

    frame = profile.build(keys).join(keys.select(*ids, associations.REP), on=ids, how="left")
    for part in (
        inspections.build(t, keys, dates),
        sampling.build(t, keys, dates),
        penalties.build(t, keys, dates),
        recalls.build(t, keys, dates),
        complaints.build(t, keys, dates),
        licenses.build(t, keys, dates),
        severity.build(t, keys, dates_list[0], half_life_days),
    ):
        frame = frame.join(part, on=ids, how="left", maintain_order="left")
    family_cols = [
        n for n, s in FEATURES.items() if s.family != "associations" and n != "severity__adverse_365d"
    ]
    frame = frame.with_columns([_finish(FEATURES[n]) for n in family_cols]).with_columns(
        pl.sum_horizontal(severity.ADVERSE_365D).cast(pl.Int64).alias("severity__adverse_365d")
    )
    frame = frame.join(associations.build(frame), on=ids, how="left", maintain_order="left")
    return frame.select(*ids, *[_finish(s) for s in FEATURES.values()]).sort(AS_OF, KEY)
