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


def known_before(frame: pl.LazyFrame, event: str, as_of: date) -> pl.LazyFrame:
    """Records known before ``as_of`` (shared/CONTRACT.md section 2: event date and recorded_on < D)."""
    cols = frame.collect_schema().names()
    keep = pl.col(event) < as_of
    if "recorded_on" in cols:
        keep = keep & (pl.col("recorded_on").is_null() | (pl.col("recorded_on") < as_of))
    return frame.filter(keep)


def period_start_of(label: str) -> date:
    """The first day of a period from its label (``period_label``'s inverse for the start)."""
    if "/" in label:
        return date.fromisoformat(label.split("/", 1)[0])
    return date.fromisoformat(label + "-01")
