"""Licences (production licences, CCC certificates, ...): what the enterprise validly holds as of D.

The lake keeps a licence's *current* status and the day it took effect (``status_changed_on``). As of
D a visible licence (issued and recorded before D) therefore has status ``status`` if
``status_changed_on < D``, and otherwise was still ``valid`` (the change had not happened yet).
Expiry is relative to D: a licence is expired as of D iff ``expires_on < D`` (it is valid through
its expiry day) or its status as of D is ``expired``. A licence is *valid as of D* iff its status as
of D is ``valid`` and it is not expired.

Required kinds per pilot sector (issue 3): ``production_license`` for ``wire_cable`` (工业产品生产许可证),
``ccc`` for ``fire_products`` (强制性产品认证).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof
from features.asof import AS_OF, KEY
from features.exprs import count_if
from features.family import Family

EVENT_DATE = "issued_on"
REQUIRED_KINDS: dict[str, tuple[str, ...]] = {
    "wire_cable": ("production_license",),
    "fire_products": ("ccc",),
}
HELD_KINDS = ("production_license", "ccc")


def build(tables: Mapping[str, pl.LazyFrame], keys: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """Licence features for every (enterprise_id, as_of) of ``keys`` with a visible licence or in a
    sector that requires one."""
    # Licences are few per enterprise and stay relevant for their whole life: pair with every later D.
    pairs = asof.window(tables["licenses"], EVENT_DATE, as_of, None)
    status = pl.when(asof.known("status_changed_on")).then(pl.col("status")).otherwise(pl.lit("valid"))
    expired = asof.known("expires_on") | (status == "expired")
    valid = (status == "valid") & ~expired
    revoked = status == "revoked"
    held = pairs.group_by(KEY, AS_OF).agg(
        count_if(valid).alias("licenses__valid"),
        *[
            count_if(valid & (pl.col("kind") == k)).clip(0, 1).alias(f"licenses__valid_{k}")
            for k in HELD_KINDS
        ],
        count_if(status == "suspended").alias("licenses__suspended"),
        count_if(revoked).alias("licenses__revoked"),
        count_if(revoked & (asof.days_since("status_changed_on") <= 365)).alias("licenses__revoked_365d"),
        count_if(expired).alias("licenses__expired"),
        pl.when(valid).then(asof.days_until("expires_on")).min().alias("licenses__days_to_expiry"),
    )
    # Only enterprises with a visible licence or in a sector that requires one get a row: the others
    # hold nothing and miss nothing, which is the catalog's fill for every licence column.
    in_sector = pl.col("sector").is_in(list(REQUIRED_KINDS))
    required = tables["enterprises"].filter(in_sector).select(KEY, "sector")
    needing = keys.select(KEY, AS_OF).join(required, on=KEY, how="inner")
    out = held.join(needing, on=[KEY, AS_OF], how="full", coalesce=True)
    missing = pl.lit(0, dtype=pl.Int64)
    for sector, kinds in REQUIRED_KINDS.items():
        for kind in kinds:
            lacks = (pl.col("sector") == sector) & (pl.col(f"licenses__valid_{kind}").fill_null(0) == 0)
            missing = missing + lacks.fill_null(False).cast(pl.Int64)
    return out.with_columns(missing.alias("licenses__required_missing")).drop("sector")


FAMILY = Family("licenses", "licenses", lambda i: build(i.tables, i.keys, i.dates))
