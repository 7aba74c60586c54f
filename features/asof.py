"""The time rule (shared/CONTRACT.md, section 2) for the feature pipeline.

As of a date D the engine may use only records with event date < D and, where present,
``recorded_on`` < D. Both conditions together are one comparison: a record becomes *visible* on
``max(event date, recorded_on)`` (``riskengine.core.timerule.visible_from``, shared with labels,
baselines and the plan's mandatory items) and is usable as of D iff that day is < D. Every comparison with
``as_of`` in the feature pipeline lives in this module (after Feast's point-in-time join, which keeps
its as-of rule in one chain of small steps); feature families only aggregate what these helpers hand
them.

Two ways of pairing events with as_of dates, both lazy and both exact:

* ``window`` — every visible event paired with every as_of D whose look-back window holds it (a run
  of the sorted dates, found by binary search, then exploded). Output size is events x as_of dates
  *inside the window*, so families use it for windows of up to about three years, never for "all
  history".
* ``running`` — cumulative sums/maxima per key; events are bucketed by the first as_of they are
  visible for (binary search of the visibility day in the sorted dates), accumulated bucket by
  bucket, and each running value is assigned to the as_of dates up to the key's next bucket. Output
  size is at most keys x dates, whatever the length of history; families use it for "ever" counts,
  "days since the last ...", the last record, and decayed sums.

Windows: "the last w days" as of D means event date in [D - w days, D), i.e. ``1 <= age <= w`` where
``age = D - event date`` in days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

import polars as pl

from riskengine.core.errors import UsageError
from riskengine.core.timerule import exists, visible_from

__all__ = ["visible_from"]  # the one as-of rule (riskengine.core.timerule), used by the families too

KEY = "enterprise_id"
AS_OF = "as_of"
AGE = "_age_days"
_K = "_k"


def as_of_frame(as_of: Sequence[date]) -> pl.LazyFrame:
    """The distinct as_of dates as a one-column frame, after checking they are plain dates."""
    dates = list(as_of)
    if not dates:
        raise UsageError("as_of must hold at least one date; got none.")
    for d in dates:
        if isinstance(d, datetime) or not isinstance(d, date):
            raise UsageError(f"as_of dates must be datetime.date values; got {d!r}.")
    return pl.LazyFrame({AS_OF: sorted(set(dates))}, schema={AS_OF: pl.Date})


def population(enterprises: pl.LazyFrame, dates: pl.LazyFrame) -> pl.LazyFrame:
    """Every enterprise that exists as of each D (``exists``), ordered by D, then by row."""
    return dates.join(enterprises, how="cross", maintain_order="left_right").filter(exists())


def window(events: pl.LazyFrame, event_date: str, as_of: Sequence[date], days: int | None) -> pl.LazyFrame:
    """Visible events paired with each as_of D whose last ``days`` days hold the event date.

    Adds ``as_of`` and ``_age_days`` (D - event date, >= 1). ``days=None`` pairs every visible event
    with every later D (use only for small tables such as licences).
    """
    # Each event's as_of dates are a run of the sorted dates: from the first D after its visibility
    # day to the last D with D - days <= event date, found by binary search; one pass over the events
    # (a range join of events with the dates is several times slower, whatever the number of dates).
    dates = pl.Series(AS_OF, sorted(set(as_of)), dtype=pl.Date)
    first_k = pl.lit(dates).search_sorted(visible_from(event_date), side="right").cast(pl.Int64)
    if days is None:
        end_k = pl.lit(len(dates), pl.Int64)
    else:
        last_day = pl.col(event_date).dt.offset_by(f"{days}d")  # D - days <= date iff D <= this
        end_k = pl.lit(dates).search_sorted(last_day, side="right").cast(pl.Int64)
    return (
        events.filter(pl.col(event_date).is_not_null())
        .with_columns(pl.int_ranges(first_k, end_k).alias(_K))
        .filter(pl.col(_K).list.len() > 0)
        .explode(_K)
        .with_columns(pl.lit(dates).gather(pl.col(_K)).alias(AS_OF))
        .drop(_K)
        .with_columns(days_since(event_date).alias(AGE))
    )


def within(days: int) -> pl.Expr:
    """True for a ``window`` pair whose event date is in the last ``days`` days before as_of."""
    return pl.col(AGE) <= days


def known(column: str) -> pl.Expr:
    """True where a secondary date (a status change, a repair becoming visible) is before as_of."""
    return pl.col(column).is_not_null() & (pl.col(column) < pl.col(AS_OF))


def in_effect(end: pl.Expr) -> pl.Expr:
    """True where a period ending (exclusively) on ``end`` still runs as of D, i.e. end > D."""
    return end > pl.col(AS_OF)


def days_since(column: str | pl.Expr) -> pl.Expr:
    """Whole days from a date to as_of (positive for past dates)."""
    col = pl.col(column) if isinstance(column, str) else column
    return (pl.col(AS_OF) - col).dt.total_days()


def days_until(column: str | pl.Expr) -> pl.Expr:
    """Whole days from as_of to a date (negative once it has passed)."""
    col = pl.col(column) if isinstance(column, str) else column
    return (col - pl.col(AS_OF)).dt.total_days()


def _segmented_cum_sum(col: str, dtype: pl.DataType, by: str, start: pl.Expr) -> pl.Expr:
    """Running sum of ``col`` that restarts where ``start`` is true (rows sorted by group).

    Integers: one global cum_sum minus the total before the group (exact, no window per group).
    Floats: a window per group, since subtracting large running totals would lose precision.
    """
    if dtype.is_float():
        return pl.col(col).fill_null(0).cum_sum().over(by)
    total = pl.col(col).fill_null(0).cum_sum()
    base = pl.when(start).then(total - pl.col(col).fill_null(0)).forward_fill()
    return total - base


_SEGMENT = 2**65  # > the span of any value lifted below
_SHIFT = 2**63 + 1


def _segmented_cum_max(col: str, dtype: pl.DataType, start: pl.Expr) -> pl.Expr:
    """Running max of an integer or date ``col`` (nulls ignored) that restarts where ``start`` is true.

    Each group's values are lifted into their own band of 128-bit integers (group number x 2**65), so
    one global ``cum_max`` never carries a value across groups, instead of a window ``over`` per
    group (much slower). Every 64-bit value v lifts to v + 2**63 + 1 >= 1, and nulls to 0.
    """
    band = start.cast(pl.Int128).cum_sum() * pl.lit(_SEGMENT, pl.Int128)
    value = pl.col(col).cast(pl.Int128) + pl.lit(_SHIFT, pl.Int128)
    top = (band + value.fill_null(0)).cum_max() - band
    return pl.when(top > 0).then(top - pl.lit(_SHIFT, pl.Int128)).cast(dtype)


def running(
    events: pl.LazyFrame,
    event_date: str,
    as_of: Sequence[date],
    by: str,
    *,
    sums: Mapping[str, pl.Expr] | None = None,
    maxes: Mapping[str, pl.Expr] | None = None,
) -> pl.LazyFrame:
    """Per (by, as_of): sums and maxima over the events visible as of that D (nothing visible: no row).

    Events are grouped by the first as_of date they are visible for (binary search in the sorted
    dates) and accumulated in that order per ``by``; each running value holds from its bucket's date
    up to the next bucket's. ``maxes`` must be integer or date expressions.
    """
    sums = dict(sums or {})
    maxes = dict(maxes or {})
    dates = pl.Series(AS_OF, sorted(set(as_of)), dtype=pl.Date)
    # Events are bucketed by the first as_of they are visible for (the number of dates <= their
    # visibility day): events of one bucket count for exactly the same dates, so one group per
    # (key, bucket) is enough, however many days the history spans. Events visible for no date go.
    per_bucket = (
        events.filter(pl.col(event_date).is_not_null() & pl.col(by).is_not_null())
        .with_columns(
            pl.lit(dates).search_sorted(visible_from(event_date), side="right").cast(pl.Int64).alias(_K)
        )
        .filter(pl.col(_K) < len(dates))
        # Evaluate per record first (a literal such as pl.lit(1) must count rows, not groups).
        .with_columns([e.alias(n) for n, e in sums.items()] + [e.alias(n) for n, e in maxes.items()])
        .group_by(by, _K)
        .agg([pl.col(n).sum() for n in sums] + [pl.col(n).max() for n in maxes])
        .sort(by, _K)
    )
    schema = per_bucket.collect_schema()
    start = pl.col(by).ne_missing(pl.col(by).shift(1))
    last_of_group = pl.col(by).ne_missing(pl.col(by).shift(-1))
    end_k = pl.when(last_of_group).then(pl.lit(len(dates), pl.Int64)).otherwise(pl.col(_K).shift(-1))
    return (
        per_bucket.with_columns(
            [_segmented_cum_sum(n, schema[n], by, start).alias(n) for n in sums]
            + [_segmented_cum_max(n, schema[n], start).alias(n) for n in maxes]
        )
        .with_columns(pl.int_ranges(_K, end_k).alias(_K))
        .explode(_K)
        .filter(pl.col(_K).is_not_null())
        .select(by, pl.lit(dates).gather(pl.col(_K)).alias(AS_OF), *sums, *maxes)
    )


def void_segments(voids: pl.DataFrame, as_of: Sequence[date]) -> list[tuple[list[date], pl.DataFrame]]:
    """The sorted as_of dates cut into runs that see the same voided records, each run with those
    records (``record_table``, ``record_id``).

    A void (an upheld objection, CONTRACT section 5) counts as of D once it is visible before D: its
    ``voided_on`` and ``recorded_on`` are before D, like any record. As of an earlier D the record
    still counts: the bureau did not know then that it was void.
    """
    dates = sorted(set(as_of))
    seen = voids.select("record_table", "record_id", visible_from("voided_on").alias("_v")).filter(
        pl.col("_v").is_not_null()
    )
    runs: list[tuple[list[date], pl.DataFrame]] = []
    last = -1
    for d in dates:
        in_force = seen.filter(pl.col("_v") < d)
        if in_force.height != last:
            runs.append(([], in_force.select("record_table", "record_id")))
            last = in_force.height
        runs[-1][0].append(d)
    return runs

