"""The one time rule (riskengine.core.timerule) binds labels and the plan's mandatory items too:
records dated or recorded on or after the decision day change neither (the features' look-ahead
property test, tests/test_features_oracle.py, run on the other callers of the rule)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.labels import build_labels, latest_snapshot
from riskengine.core.timerule import add_months, known_at, known_before, month_start
from riskengine.supervision.mandatory import mandatory_items
from riskengine.supervision.policy import load_policy
from tests.feature_histories import AS_OF, future_of, histories, to_lazy

EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY = load_policy(None)


def labels_known_before(tables: dict, d: date) -> pl.DataFrame:
    snapshots = [latest_snapshot(d, 365), add_months(latest_snapshot(d, 365), -1)]
    return build_labels(to_lazy(tables), snapshots, known_before=d).collect().sort("enterprise_id", "as_of")


def mandatory_as_of(tables: dict, population: pl.DataFrame, d: date) -> pl.DataFrame:
    return mandatory_items(population, to_lazy(tables), d, POLICY).sort("enterprise_id")


@EXAMPLES
@given(histories(), st.sampled_from(AS_OF), st.data())
def test_labels_ignore_records_dated_or_recorded_on_or_after_the_decision_day(tables, d, data):
    past, changed = future_of(tables, d, data)
    base = labels_known_before(tables, d)
    assert labels_known_before(past, d).equals(base)
    assert labels_known_before(changed, d).equals(base)


@EXAMPLES
@given(histories(), st.sampled_from(AS_OF), st.data())
def test_mandatory_items_ignore_records_dated_or_recorded_on_or_after_as_of(tables, d, data):
    population = pl.DataFrame({
        "enterprise_id": [e["enterprise_id"] for e in tables["enterprises"]],
        "sector": [e["sector"] for e in tables["enterprises"]],
        "grade": ["D"] * len(tables["enterprises"]),
    })
    past, changed = future_of(tables, d, data)
    base = mandatory_as_of(tables, population, d)
    assert mandatory_as_of(past, population, d).equals(base)
    assert mandatory_as_of(changed, population, d).equals(base)


def test_a_record_is_known_the_day_after_both_its_date_and_its_recording():
    rows = pl.LazyFrame({
        "day": [date(2025, 5, 31), date(2025, 5, 31), date(2025, 6, 1), date(2025, 5, 1), None],
        "recorded_on": [None, date(2025, 6, 1), None, date(2025, 5, 31), date(2025, 5, 1)],
    })
    kept = known_before(rows, "day", date(2025, 6, 1)).collect()
    assert kept["day"].to_list() == [date(2025, 5, 31), date(2025, 5, 1)]
    per_row = rows.with_columns(pl.lit(date(2025, 6, 1)).alias("as_of")).select(
        known_at("day", pl.col("as_of"))).collect().to_series().to_list()
    assert per_row == [True, False, False, True, False]


def test_without_recorded_on_the_event_date_decides():
    rows = pl.LazyFrame({"day": [date(2025, 5, 31), date(2025, 6, 1)]})
    assert known_before(rows, "day", date(2025, 6, 1)).collect()["day"].to_list() == [date(2025, 5, 31)]


def test_months_keep_the_day_clipped_to_the_month_end():
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert add_months(month_start(date(2025, 12, 17)), 1) == date(2026, 1, 1)
    assert month_start(date(2024, 2, 29)) - timedelta(days=1) == date(2024, 1, 31)
