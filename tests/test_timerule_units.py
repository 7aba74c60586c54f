"""The time rule's helpers one by one, with hand-worked days on both sides of every edge
(riskengine/core/timerule.py; the property tests in test_timerule.py bind its callers)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from riskengine.core.timerule import (
    add_months,
    exists,
    known_at,
    known_before,
    month_start,
    period_label,
    period_of,
    period_start_of,
    visible_from,
)

D = date(2025, 6, 1)


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2025, 1, 31), 1, date(2025, 2, 28)),     # clipped to the month's end
    (date(2024, 1, 31), 1, date(2024, 2, 29)),     # a leap February
    (date(2025, 1, 15), 1, date(2025, 2, 15)),
    (date(2025, 12, 15), 1, date(2026, 1, 15)),    # over the year end
    (date(2025, 11, 30), 2, date(2026, 1, 30)),
    (date(2025, 1, 15), -1, date(2024, 12, 15)),   # back over the year start
    (date(2025, 3, 31), -1, date(2025, 2, 28)),
    (date(2025, 5, 31), 13, date(2026, 6, 30)),
    (date(2025, 7, 9), 0, date(2025, 7, 9)),
    (date(2025, 7, 9), -24, date(2023, 7, 9)),
])
def test_add_months_keeps_the_day_clipped_to_the_month_end(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_a_period_is_one_month_from_as_of_end_exclusive() -> None:
    assert period_of(date(2025, 6, 1)) == (date(2025, 6, 1), date(2025, 7, 1))
    assert period_of(date(2025, 1, 31)) == (date(2025, 1, 31), date(2025, 2, 28))


@pytest.mark.parametrize(("as_of", "label"), [
    (date(2025, 6, 1), "2025-06"),
    (date(2025, 12, 1), "2025-12"),
    (date(2025, 6, 2), "2025-06-02/2025-07-01"),   # end inclusive: the day before the next period
    (date(2025, 1, 31), "2025-01-31/2025-02-27"),
])
def test_period_labels_and_their_start(as_of: date, label: str) -> None:
    assert period_label(as_of) == label
    assert period_start_of(label) == as_of


def test_month_start_is_the_first() -> None:
    assert month_start(date(2025, 6, 30)) == date(2025, 6, 1)
    assert month_start(date(2025, 6, 1)) == date(2025, 6, 1)


RECORDS = pl.DataFrame({
    "id": ["before", "on", "after", "recorded_on_d", "recorded_before", "unrecorded", "undated"],
    "event_on": [date(2025, 5, 31), D, date(2025, 6, 2), date(2025, 5, 1), date(2025, 5, 1),
                 date(2025, 5, 31), None],
    "recorded_on": [None, None, None, D, date(2025, 5, 31), None, date(2025, 5, 1)],
})


def test_visible_from_is_the_later_of_event_and_recording_nulls_ignored() -> None:
    got = RECORDS.select(visible_from("event_on").alias("v"))["v"].to_list()
    assert got == [date(2025, 5, 31), D, date(2025, 6, 2), D, date(2025, 5, 31), date(2025, 5, 31),
                   date(2025, 5, 1)]


def test_known_at_means_dated_and_visible_strictly_before_d() -> None:
    known = RECORDS.filter(known_at("event_on", D))["id"].to_list()
    assert known == ["before", "recorded_before", "unrecorded"]
    per_row = RECORDS.with_columns(pl.lit(date(2025, 6, 3)).alias("as_of"))
    assert per_row.filter(known_at("event_on", pl.col("as_of")))["id"].to_list() == [
        "before", "on", "after", "recorded_on_d", "recorded_before", "unrecorded"]


def test_known_before_uses_recorded_on_where_the_frame_has_it() -> None:
    got = known_before(RECORDS.lazy(), "event_on", D).collect()["id"].to_list()
    assert got == ["before", "recorded_before", "unrecorded"]
    bare = RECORDS.drop("recorded_on").lazy()
    assert known_before(bare, "event_on", D).collect()["id"].to_list() == [
        "before", "recorded_on_d", "recorded_before", "unrecorded"]


def test_an_enterprise_exists_once_established_before_d_or_with_no_founding_date() -> None:
    frame = pl.DataFrame({
        "established_on": [date(2025, 5, 31), D, date(2025, 6, 2), None],
        "as_of": [D, D, date(2025, 6, 3), D],
    })
    assert frame.select(exists(D))["established_on"].to_list() == [True, False, False, True]
    assert frame.select(exists())["established_on"].to_list() == [True, False, True, True]
    assert frame.select(exists(pl.lit(date(2025, 6, 2))))["established_on"].to_list() == [
        True, True, False, True]
