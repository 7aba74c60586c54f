"""The time rule (shared/CONTRACT.md section 2) and month arithmetic: one owner for both.

A record is *known* as of D when its event date is before D and, where present, its ``recorded_on``
is before D: together, it becomes visible on ``max(event date, recorded_on)`` and is usable iff that
day is < D. Features (``features.asof``), labels, baselines and the plan's mandatory items all ask
this module. Months: ``add_months`` keeps the day (clipped to the month's end); ``month_start`` is the
first of the month.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import polars as pl


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clipped to the month's last day (Jan 31 + 1 month = Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def period_of(as_of: date) -> tuple[date, date]:
    """The planning period ``[as_of, as_of + 1 month)`` as (start, end exclusive)."""
    return as_of, add_months(as_of, 1)


def period_label(as_of: date) -> str:
    """``YYYY-MM`` for a period starting on the 1st, else ``start/end`` (ISO, end inclusive)."""
    start, end = period_of(as_of)
    if as_of.day == 1:
        return as_of.strftime("%Y-%m")
    return f"{start.isoformat()}/{(end - timedelta(days=1)).isoformat()}"


def visible_from(event_date: str) -> pl.Expr:
    """The first day after which a record may be used: max(event date, recorded_on) (nulls ignored)."""
    return pl.max_horizontal(pl.col(event_date), pl.col("recorded_on"))


def known_at(event_date: str, as_of: date | pl.Expr) -> pl.Expr:
    """True where a record (with a ``recorded_on`` column) was known before ``as_of``: a date, or an
    expression such as ``pl.col("as_of")`` for one decision date per row."""
    day = as_of if isinstance(as_of, pl.Expr) else pl.lit(as_of, dtype=pl.Date)
    return pl.col(event_date).is_not_null() & (visible_from(event_date) < day)


def known_before(frame: pl.LazyFrame, event: str, as_of: date) -> pl.LazyFrame:
    """The rows of ``frame`` known before ``as_of``; a frame without ``recorded_on`` is judged by its
    event date alone."""
    if "recorded_on" not in frame.collect_schema().names():
        return frame.filter(pl.col(event) < as_of)
    return frame.filter(known_at(event, as_of))


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def period_start_of(label: str) -> date:
    """The first day of a period from its label (``period_label``'s inverse for the start)."""
    if "/" in label:
        return date.fromisoformat(label.split("/", 1)[0])
    return date.fromisoformat(label + "-01")


def exists(as_of: date | pl.Expr | None = None) -> pl.Expr:
    """True where an enterprise exists as of D: established before D, or with no founding date (an
    optional column, CONTRACT section 1: an export without it must still grade every enterprise).
    ``as_of`` defaults to the frame's ``as_of`` column."""
    day = pl.col("as_of") if as_of is None else (as_of if isinstance(as_of, pl.Expr) else pl.lit(as_of))
    return pl.col("established_on").is_null() | (pl.col("established_on") < day)
