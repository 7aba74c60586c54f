"""Working days of the mainland calendar, for statutory clocks (CONTRACT sections 2 and 5).

Holidays and make-up working days (调休, e.g. a Saturday worked to bridge a holiday) come from the
maintained ``chinese-calendar`` library, which follows each year's State Council notice. A step due
"within N working days" of day R is due on the N-th working day after R; R itself does not count.

The library knows the years the State Council has announced. For a later year it has no data; then
Monday to Friday are taken as working days (``covered`` says whether a day is announced), since a
clock must still run: the due day is recomputed from the same receipt day once the library is updated.
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

from riskengine.core.errors import UsageError

_MAX_DAYS = 3660  # no statutory clock runs ten years


def covered(day: date) -> bool:
    """Whether the library has the State Council's holiday arrangement for ``day``'s year."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def is_working_day(day: date) -> bool:
    """A working day: not a public holiday and not a weekend, unless it is a make-up working day."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def add_working_days(start: date, n: int) -> date:
    """The ``n``-th working day after ``start`` (``start`` itself never counts); ``start`` for n = 0."""
    if n < 0:
        raise UsageError(f"working days must be ≥ 0; got {n}")
    day, left = start, n
    for _ in range(_MAX_DAYS):
        if left == 0:
            return day
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    raise UsageError(f"{n} working days after {start} is more than ten years away")


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]: how many working days of a clock started on ``start`` have run
    by ``end`` (0 when ``end`` ≤ ``start``)."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count
