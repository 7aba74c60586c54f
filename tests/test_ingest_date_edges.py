"""Ingest's date limits one day either side: the ingest day itself is allowed, the day after is
``future_date``; the earliest allowed date is allowed, the day before is ``too_early``."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from riskengine.core.contract import EARLIEST_EVENT, TABLES
from riskengine.lake.validate import ROW, validate_table

INGEST_DAY = date(2025, 7, 1)


def _rules_for(day: date) -> list[str]:
    table = TABLES["inspections"]
    row = {"inspection_id": "I1", "enterprise_id": "91350100M000100Y43", "inspected_on": day.isoformat(),
           "kind": "random", "inspector_id": "P1", "outcome": "pass"}
    frame = pl.DataFrame({ROW: [1], **{k: [v] for k, v in row.items()}})
    result = validate_table(table, frame, ingest_day=INGEST_DAY)
    # the enterprise is not in this test's lake: only the date rules are of interest here
    rules = [r for r in result.quarantine.get_column("rule").to_list() if r != "unknown_reference"]
    return sorted(rules)


@pytest.mark.parametrize(("day", "rules"), [
    (INGEST_DAY, []),
    (INGEST_DAY + timedelta(days=1), ["future_date"]),
    (EARLIEST_EVENT, []),
    (EARLIEST_EVENT - timedelta(days=1), ["too_early"]),
])
def test_date_limits_both_sides(day: date, rules: list[str]) -> None:
    assert _rules_for(day) == rules
