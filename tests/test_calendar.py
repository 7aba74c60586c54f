"""The working-day calendar: holidays, make-up working days (调休) and the CONTRACT §5 clock example."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from riskengine.core.calendar import add_working_days, covered, is_working_day, working_days_between
from riskengine.core.errors import UsageError


def test_contract_example_two_working_days_across_national_day() -> None:
    # Received Monday 2025-09-29: 09-30 is the first working day; 10-01..10-08 are holidays.
    assert add_working_days(date(2025, 9, 29), 2) == date(2025, 10, 9)


def test_national_day_week_2025_is_off_and_its_make_up_days_are_worked() -> None:
    golden_week = [date(2025, 10, 1) + timedelta(days=k) for k in range(8)]
    assert not any(is_working_day(d) for d in golden_week)
    assert is_working_day(date(2025, 9, 28))  # Sunday worked (调休)
    assert is_working_day(date(2025, 10, 11))  # Saturday worked (调休)


def test_spring_festival_2025_is_off_and_the_make_up_saturday_is_worked() -> None:
    festival = [date(2025, 1, 28) + timedelta(days=k) for k in range(8)]  # 除夕 to 初七
    assert not any(is_working_day(d) for d in festival)
    assert is_working_day(date(2025, 1, 26))  # Sunday worked
    assert is_working_day(date(2025, 2, 8))  # Saturday worked
    # Ten working days from the Friday before the festival: Sun 01-26 and Mon 01-27, then 02-05 on,
    # with Saturday 02-08 worked: the tenth is Thursday 02-13.
    assert add_working_days(date(2025, 1, 24), 10) == date(2025, 2, 13)


def test_ordinary_weekend_is_not_worked() -> None:
    assert not is_working_day(date(2025, 3, 8)) and not is_working_day(date(2025, 3, 9))
    assert add_working_days(date(2025, 3, 7), 1) == date(2025, 3, 10)


def test_the_receipt_day_never_counts_and_zero_days_is_the_day_itself() -> None:
    assert add_working_days(date(2025, 3, 10), 1) == date(2025, 3, 11)
    assert add_working_days(date(2025, 3, 10), 0) == date(2025, 3, 10)
    assert working_days_between(date(2025, 9, 29), date(2025, 10, 9)) == 2


def test_years_the_library_does_not_know_fall_back_to_weekdays() -> None:
    assert not covered(date(2099, 1, 1)) and covered(date(2025, 1, 1))
    assert add_working_days(date(2099, 1, 2), 1) == date(2099, 1, 5)  # Friday -> Monday


def test_negative_working_days_are_refused() -> None:
    with pytest.raises(UsageError, match="≥ 0"):
        add_working_days(date(2025, 1, 1), -1)


def test_working_days_between_counts_the_end_not_the_start_and_nothing_backwards() -> None:
    friday, saturday, monday = date(2025, 3, 7), date(2025, 3, 8), date(2025, 3, 10)
    assert working_days_between(friday, friday) == 0
    assert working_days_between(monday, friday) == 0  # end before start
    assert working_days_between(friday, saturday) == 0  # a weekend day ends the span
    assert working_days_between(friday, monday) == 1
    assert working_days_between(date(2025, 3, 9), monday) == 1  # Sunday start: Monday counts
    assert working_days_between(date(2099, 1, 2), date(2099, 1, 5)) == 1  # fallback: Fri -> Mon


def test_the_fallback_week_is_monday_to_friday() -> None:
    # 2099-01-05 is a Monday; no holiday data for 2099
    week = [date(2099, 1, 5) + timedelta(days=k) for k in range(7)]
    assert [is_working_day(d) for d in week] == [True] * 5 + [False] * 2


def test_a_clock_longer_than_ten_years_is_refused_and_one_just_inside_runs() -> None:
    start = date(2025, 1, 3)
    last = start + timedelta(days=3659)  # 2035-01-10, a Wednesday: the farthest day a clock may reach
    assert is_working_day(last) and is_working_day(last + timedelta(days=1))
    n = working_days_between(start, last)
    assert add_working_days(start, n) == last
    with pytest.raises(UsageError, match="more than ten years away"):
        add_working_days(start, n + 1)  # 3,660 days on
