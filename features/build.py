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

_PROFILE = ("established_on", "registered_capital", "sector", "district", "status", associations.REP)
_CODE = "_code"
_JK = "_join_key"
_ID = "_enterprise_id"
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


def _encode(tables: dict[str, pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    """Replace ``enterprise_id`` by a dense integer code (the enterprise's row) in every table: joins
    and group-bys on integers are several times faster than on 18-character strings. Enterprises keep
    the string as ``_enterprise_id``; event rows of unknown enterprises go.
    """
    ent = tables["enterprises"].with_row_index(_CODE)
    out = {"enterprises": ent.rename({KEY: _ID, _CODE: KEY})}
    for name, frame in tables.items():
        if name == "enterprises" or KEY not in frame.collect_schema().names():
            out.setdefault(name, frame)
            continue
        out[name] = (
            frame.join(ent.select(KEY, _CODE), on=KEY, how="inner", maintain_order="left")
            .drop(KEY)
            .rename({_CODE: KEY})
        )
    return out


def _join_key() -> pl.Expr:
    """(enterprise code, as_of) packed into one Int64: joining on it is several times faster than on
    the two columns (days since 1970, shifted by 2**20, fit in 21 bits for years 0-4840)."""
    days = pl.col(AS_OF).cast(pl.Int32).cast(pl.Int64) + 2**20
    return (pl.col(KEY).cast(pl.Int64) * 2**21 + days).alias(_JK)


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
    The result is lazy, sorted by as_of and then the enterprises table's order; collect it once.
    """
    dates = asof.as_of_frame(as_of)  # validates
    dates_list = sorted(set(as_of))
    severity.check_half_life(half_life_days, dates_list)
    t = _encode(_conform(tables))
    ids = [KEY, AS_OF]
    population = asof.population(t["enterprises"].select(KEY, _ID, *_PROFILE), dates)
    keys = population.select(ids)

    # Each family is joined to the population on its own and the results are put side by side: every
    # left join keeps the population's order, so no join ever copies the columns gathered before it.
    slots = keys.select(_join_key())
    parts = [
        slots.join(part.with_columns(_join_key()).drop(ids), on=_JK, how="left", maintain_order="left").drop(
            _JK
        )
        for part in (
            inspections.build(t, keys, dates_list),
            sampling.build(t, keys, dates_list),
            penalties.build(t, keys, dates_list),
            recalls.build(t, keys, dates_list),
            complaints.build(t, keys, dates_list),
            licenses.build(t, keys, dates_list),
            severity.build(t, dates_list, half_life_days),
        )
    ]
    family_cols = [n for n, s in FEATURES.items() if s.family not in ("associations", "profile")]
    family_cols.remove("severity__adverse_365d")
    frame = (
        pl.concat([profile.build(population), *parts], how="horizontal")
        .with_columns([_finish(FEATURES[n]) for n in family_cols])
        .with_columns(pl.sum_horizontal(severity.ADVERSE_365D).cast(pl.Int64).alias("severity__adverse_365d"))
        .with_columns(associations.columns())
    )
    # Ordered by (as_of, enterprise row) from the population; the enterprise ids came along with it.
    return frame.select(pl.col(_ID).alias(KEY), AS_OF, *[_finish(s) for s in FEATURES.values()])
