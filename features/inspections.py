"""Inspections: counts by outcome and kind, findings, fail rate, recency, last outcome, inspector strictness.

*Never inspected* is its own column: no history is not a clean history.

Exposure-free rates (issue 11): counts grow with how often someone looked, so they measure the
supervisor as much as the enterprise (complaints, campaigns, follow-ups). ``*_per_inspection`` and
``adverse_share`` are what an inspection found on average: time-decayed over the whole history
(half-life ``RATE_HALF_LIFE_DAYS``) and shrunk towards the population's decayed rate as of D with
``RATE_PRIOR`` pseudo-inspections, so one visit is not a verdict. On Boston's real inspections the
decayed weighted findings per inspection alone ranks the next inspection at AUC 0.68, the counts at
most 0.67 (README, real data).

Inspector strictness (nuisance, issue 4): an inspector's fail rate as of D over every inspection of
every enterprise visible before D, shrunk towards the population fail rate with ``STRICTNESS_PRIOR``
pseudo-inspections, minus that population rate. 0 is therefore "an average inspector" and is the
neutral value a model substitutes; unknown inspectors and the never-inspected get 0 as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof
from features.asof import AS_OF, KEY
from features.catalog import INSPECTION_KINDS, WINDOWS
from features.exprs import count_if, ratio, sum_if
from features.family import Family
from riskengine.core.contract import adverse_inspection

EVENT_DATE = "inspected_on"
STRICTNESS_PRIOR = 20.0
RATE_HALF_LIFE_DAYS = 1460.0
RATE_PRIOR = 1.0
# What one inspection found, per rate feature (an adverse inspection: failed or a critical finding,
# CONTRACT section 2; findings weighted 3 critical, 2 serious, 1 minor).
RATES = {
    "inspections__adverse_share": adverse_inspection(),
    "inspections__critical_per_inspection": pl.col("findings_critical").fill_null(0),
    "inspections__serious_per_inspection": pl.col("findings_serious").fill_null(0),
    "inspections__minor_per_inspection": pl.col("findings_minor").fill_null(0),
    "inspections__findings_weighted_per_inspection": 3 * pl.col("findings_critical").fill_null(0)
    + 2 * pl.col("findings_serious").fill_null(0) + pl.col("findings_minor").fill_null(0),
}
# Ties on one day: the worse outcome counts as the later one (a fail is never hidden by a pass), then
# the later row of the table.
OUTCOME_RANK = {"pass": 0, "conditional": 1, "fail": 2}
_ALL = "_all"
_ROW = "_row"


def _is(outcome: str) -> pl.Expr:
    return pl.col("outcome") == outcome


def build(tables: Mapping[str, pl.LazyFrame], keys: pl.LazyFrame, as_of: Sequence[date],
          strictness: pl.LazyFrame | None = None, rates: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Inspection features for every (enterprise_id, as_of) of ``keys`` that has any visible inspection.

    ``strictness`` (``strictness_table`` of every inspection) replaces the strictness computed from
    ``tables``: a partition of the enterprises holds only part of each inspector's record.
    """
    insp = tables["inspections"]

    # Windowed counts (up to 1095 days).
    pairs = asof.window(insp, EVENT_DATE, as_of, max(WINDOWS))
    aggs: list[pl.Expr] = []
    for w in WINDOWS:
        inw = asof.within(w)
        aggs += [
            count_if(inw).alias(f"inspections__count_{w}d"),
            count_if(inw & _is("fail")).alias(f"inspections__fail_{w}d"),
            count_if(inw & _is("conditional")).alias(f"inspections__conditional_{w}d"),
        ]
        aggs += [
            count_if(inw & (pl.col("kind") == k)).alias(f"inspections__{k}_{w}d") for k in INSPECTION_KINDS
        ]
    for w in (365, 1095):
        inw = asof.within(w)
        aggs.append(ratio(count_if(inw & _is("fail")), count_if(inw)).alias(f"inspections__fail_rate_{w}d"))
        aggs += [
            sum_if(inw, pl.col(f"findings_{sev}")).alias(f"inspections__findings_{sev}_{w}d")
            for sev in ("minor", "serious", "critical")
        ]
    windowed = pairs.group_by(KEY, AS_OF).agg(aggs)

    # Whole-history facts, accumulated in order of visibility.
    # The last inspection as of D is the visible one with the greatest (date, outcome rank, table row),
    # packed into one Int64 ``_last_rank`` (days since 1970 + 2**20 | outcome rank + 1 | 32-bit row).
    rows = insp.with_row_index(_ROW)
    orank = pl.col("outcome").replace_strict(OUTCOME_RANK, default=-1) + 1
    days = pl.col(EVENT_DATE).cast(pl.Int32).cast(pl.Int64) + 2**20
    packed = ((days * 4 + orank) * 2**32 + pl.col(_ROW).cast(pl.Int64)).alias("_last_rank")
    history = asof.running(
        rows,
        EVENT_DATE,
        as_of,
        KEY,
        sums={"inspections__count_ever": pl.lit(1), "inspections__fail_ever": _is("fail").cast(pl.Int64)},
        maxes={
            "_last": pl.col(EVENT_DATE),
            "_last_fail": pl.when(_is("fail")).then(pl.col(EVENT_DATE)),
            "_last_rank": packed,
        },
    )
    last = rows.select(_ROW, "outcome", "inspector_id")
    strict = strictness if strictness is not None else strictness_table(insp, as_of)
    history = (
        history.with_columns((pl.col("_last_rank") % 2**32).cast(pl.UInt32).alias(_ROW))
        .join(last, on=_ROW, how="left")
        .join(strict, on=["inspector_id", AS_OF], how="left")
        .select(
            KEY,
            AS_OF,
            "inspections__count_ever",
            "inspections__fail_ever",
            pl.col("inspections__count_ever").is_null().cast(pl.Int64).alias("inspections__never_inspected"),
            asof.days_since("_last").alias("inspections__days_since_last"),
            asof.days_since("_last_fail").alias("inspections__days_since_last_fail"),
            pl.col("outcome").alias("inspections__last_outcome"),
            pl.col("_strictness").alias("inspections__inspector_strictness_last"),
        )
    )

    mean_strict = (
        pairs.filter(asof.within(365) & pl.col("inspector_id").is_not_null())
        .join(strict, on=["inspector_id", AS_OF], how="left")
        .group_by(KEY, AS_OF)
        .agg(pl.col("_strictness").mean().alias("inspections__inspector_strictness_mean_365d"))
    )
    return (history.join(windowed, on=[KEY, AS_OF], how="left")
            .join(mean_strict, on=[KEY, AS_OF], how="left")
            .join(_rates(insp, as_of, rates), on=[KEY, AS_OF], how="left"))


def _sums(as_of: Sequence[date]) -> dict[str, pl.Expr]:
    """The decayed weight and weighted rate sums, growth 2 ** ((t - ref) / h) from ref the earliest as_of."""
    ref = pl.lit(min(as_of), dtype=pl.Date)
    growth = pl.lit(2.0).pow((pl.col(EVENT_DATE) - ref).dt.total_days() / RATE_HALF_LIFE_DAYS)
    return {"_wn": growth, **{f"_w{i}": growth * e.cast(pl.Float64) for i, e in enumerate(RATES.values())}}


def population_rates(insp: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """(as_of, _p0, ...): the population's decayed rates as of each D over every enterprise's inspections.

    Like ``strictness_table`` it looks across enterprises: a part of the enterprises
    (``riskengine.workflows.cluster``) passes it computed from every inspection.
    """
    everyone = asof.running(insp.with_columns(pl.lit(1).alias(_ALL)), EVENT_DATE, as_of, _ALL,
                            sums=_sums(as_of))
    return everyone.select(AS_OF, *[(pl.col(f"_w{i}") / pl.col("_wn")).alias(f"_p{i}")
                                    for i in range(len(RATES))])


def _rates(insp: pl.LazyFrame, as_of: Sequence[date], population: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """The decayed, shrunk per-inspection rates (module doc) for every (enterprise, as_of) inspected.

    0.5 ** ((D - t) / h) = 2 ** ((t - ref) / h) * 2 ** ((ref - D) / h) with ref the earliest as_of, so
    each inspection is summed once (as in ``features.severity``); the decay cancels in the population's
    rate and multiplies the enterprise's sums. ``population`` (``population_rates`` of every
    inspection) replaces the population computed from ``insp``.
    """
    ref = pl.lit(min(as_of), dtype=pl.Date)
    mine = asof.running(insp, EVENT_DATE, as_of, KEY, sums=_sums(as_of))
    if population is None:
        population = population_rates(insp, as_of)
    decay = pl.lit(2.0).pow(-(pl.col(AS_OF) - ref).dt.total_days() / RATE_HALF_LIFE_DAYS)
    return mine.join(population, on=AS_OF, how="left").select(
        KEY, AS_OF,
        *[((pl.col(f"_w{i}") * decay + RATE_PRIOR * pl.col(f"_p{i}")) / (pl.col("_wn") * decay + RATE_PRIOR))
          .alias(name) for i, name in enumerate(RATES)],
    )


def strictness_table(insp: pl.LazyFrame, as_of: Sequence[date]) -> pl.LazyFrame:
    """(inspector_id, as_of, _strictness): shrunk fail rate minus the population fail rate, as of D."""
    fails = {"_n": pl.lit(1), "_f": _is("fail").cast(pl.Int64)}
    with_id = insp.filter(pl.col("inspector_id").is_not_null())
    per_inspector = asof.running(with_id, EVENT_DATE, as_of, "inspector_id", sums=fails)
    overall = asof.running(
        insp.with_columns(pl.lit(1).alias(_ALL)),
        EVENT_DATE,
        as_of,
        _ALL,
        sums={"_N": pl.lit(1), "_F": _is("fail").cast(pl.Int64)},
    ).select(AS_OF, (pl.col("_F") / pl.col("_N")).alias("_p"))
    m = STRICTNESS_PRIOR
    return per_inspector.join(overall, on=AS_OF, how="left").select(
        "inspector_id",
        AS_OF,
        ((pl.col("_f").fill_null(0) + m * pl.col("_p")) / (pl.col("_n").fill_null(0) + m) - pl.col("_p"))
        .fill_null(0.0)
        .alias("_strictness"),
    )


FAMILY = Family("inspections", "inspections",
                lambda i: build(i.tables, i.keys, i.dates, i.strictness, i.rates))
