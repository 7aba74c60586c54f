"""Each date boundary of the planner's mandatory rules, one day on each side (as_of 2025-06-01: the
period is June, the previous period May, the 12-month window starts 2024-07-01)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from riskengine.supervision.mandatory import CarryOver, mandatory_items
from riskengine.supervision.policy import load_policy
from tests.test_planning import inspection, tables_of

AS_OF = date(2025, 6, 1)
POLICY = load_policy(None)
E = "E00001"


def _items(inspections=(), complaints=(), *, sector: str = "retail", grade: str = "A",
           carry: CarryOver | None = None) -> dict[str, str]:
    population = pl.DataFrame({"enterprise_id": [E], "sector": [sector], "grade": [grade]})
    out = mandatory_items(population, tables_of(list(inspections), list(complaints)), AS_OF, POLICY, carry)
    return dict(zip(out["enterprise_id"].to_list(), out["why"].to_list(), strict=True))


@pytest.mark.parametrize(("day", "due"), [
    (date(2025, 5, 31), True),   # the day before as_of: known
    (date(2025, 6, 1), False),   # dated on as_of: not yet known
    (date(2025, 5, 1), True),    # first day of the previous period
    (date(2025, 4, 30), False),  # the day before it
])
def test_follow_up_of_a_failure_window_and_visibility(day: date, due: bool) -> None:
    items = _items([inspection(E, day, "fail")])
    assert (E in items and "follow-up of a failed inspection" in items[E]) is due


@pytest.mark.parametrize(("recorded", "due"), [(date(2025, 5, 31), True), (date(2025, 6, 1), False)])
def test_a_failure_recorded_on_as_of_is_not_yet_known(recorded: date, due: bool) -> None:
    assert (E in _items([inspection(E, date(2025, 5, 20), "fail", recorded=recorded)])) is due


def _complaint(day: date) -> dict:
    return {"complaint_id": "C1", "enterprise_id": E, "received_on": day, "substantiated": True}


@pytest.mark.parametrize(("day", "lead"), [
    (date(2025, 5, 31), True), (date(2025, 6, 1), False),   # as_of: not yet known
    (date(2025, 5, 1), True), (date(2025, 4, 30), False),   # the previous period's first day
])
def test_complaint_lead_window(day: date, lead: bool) -> None:
    items = _items(complaints=[_complaint(day)])
    assert (E in items and "open complaint lead" in items[E]) is lead


@pytest.mark.parametrize(("inspected", "lead"), [
    (date(2025, 5, 9), True),    # inspected the day before the complaint: still open
    (date(2025, 5, 10), False),  # inspected the day it came in: dealt with
    (date(2025, 5, 11), False),
])
def test_no_inspection_since_the_complaint(inspected: date, lead: bool) -> None:
    items = _items([inspection(E, inspected)], [_complaint(date(2025, 5, 10))])
    assert (E in items) is lead


@pytest.mark.parametrize(("inspected", "due"), [
    (date(2024, 7, 1), False),   # first day of the 12 months ending with the period
    (date(2024, 6, 30), True),   # one day earlier: outside
    (date(2025, 5, 31), False),
    (date(2025, 6, 1), True),    # on as_of: not yet known, so it does not count
])
def test_minimum_frequency_twelve_month_window(inspected: date, due: bool) -> None:
    items = _items([inspection(E, inspected)], sector="wire_cable", grade="D")
    assert (E in items) is due
    if due:
        assert "minimum frequency due (0 in 12 months, at least 1 required)" in items[E]


def test_events_dated_on_as_of_are_unknown_in_tables_without_recorded_on() -> None:
    """Real tables may lack ``recorded_on``: the event date alone decides, still strictly before as_of."""
    def bare(day: date) -> dict[str, str]:
        tables = tables_of([inspection(E, day, "fail")], [_complaint(day)])
        tables = {name: frame.drop("recorded_on") for name, frame in tables.items()}
        population = pl.DataFrame({"enterprise_id": [E], "sector": ["retail"], "grade": ["A"]})
        out = mandatory_items(population, tables, AS_OF, POLICY)
        return dict(zip(out["enterprise_id"].to_list(), out["why"].to_list(), strict=True))

    assert bare(date(2025, 6, 1)) == {}
    assert "follow-up of a failed inspection" in bare(date(2025, 5, 31))[E]


def test_minimum_frequency_of_zero_is_never_due() -> None:
    assert _items([], sector="wire_cable", grade="C") == {}


@pytest.mark.parametrize(("inspected", "carried"), [(date(2025, 5, 1), False), (date(2025, 4, 30), True)])
def test_carried_item_counts_a_visit_from_the_previous_period_start(inspected: date, carried: bool) -> None:
    carry = CarryOver("2025-05", date(2025, 5, 1), (E,))
    items = _items([inspection(E, inspected)], carry=carry)
    assert (E in items and "carried over from 2025-05" in items[E]) is carried
