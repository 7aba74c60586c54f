"""Training labels (models.labels) and the snapshot plan: windows [t, t + horizon), known before D."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from models.labels import build_labels, visit_rows
from models.train_config import VISIT_MONTH_DAYS, TrainConfig, plan_snapshots, snapshot_plans
from riskengine.core.contract import TABLES
from riskengine.core.errors import UsageError
from riskengine.core.timerule import add_months

T = date(2024, 1, 1)
D = date(2025, 6, 1)


def _table(name: str, rows: list[dict]) -> pl.LazyFrame:
    schema = TABLES[name].schema
    return pl.LazyFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def _tables(**events: list[dict]) -> dict[str, pl.LazyFrame]:
    ents = [
        {
            "enterprise_id": e,
            "district": "420106",
            "sector": "food_related",
            "established_on": date(2020, 1, 1),
            "status": "active",
        }
        for e in ("e1", "e2")
    ]
    return {"enterprises": _table("enterprises", ents), **{k: _table(k, v) for k, v in events.items()}}


def _inspection(
    day: date, outcome: str = "fail", kind: str = "targeted", recorded_on: date | None = None
) -> dict:
    return {
        "inspection_id": f"i{day}{kind}",
        "enterprise_id": "e1",
        "inspected_on": day,
        "kind": kind,
        "outcome": outcome,
        "recorded_on": recorded_on,
    }


def _label(tables: dict[str, pl.LazyFrame], t: date = T, horizon: int = 365) -> dict:
    out = build_labels(tables, [t], known_before=D, horizon_days=horizon).collect()
    return out.filter(pl.col("enterprise_id") == "e1").row(0, named=True)


def test_failed_inspection_on_the_first_day_of_the_window_labels() -> None:
    assert _label(_tables(inspections=[_inspection(T)]))["label"] is True


def test_failed_inspection_before_the_window_does_not_label() -> None:
    assert _label(_tables(inspections=[_inspection(T - timedelta(days=1))]))["label"] is False


def test_failed_inspection_on_the_window_end_does_not_label() -> None:
    end = T + timedelta(days=365)
    assert _label(_tables(inspections=[_inspection(end)]))["label"] is False


def test_event_recorded_on_or_after_d_never_labels() -> None:
    inside = T + timedelta(days=100)
    assert _label(_tables(inspections=[_inspection(inside, recorded_on=D)]))["label"] is False
    assert (
        _label(_tables(inspections=[_inspection(inside, recorded_on=D - timedelta(days=1))]))["label"] is True
    )


def test_window_ending_after_d_is_refused() -> None:
    late = D - timedelta(days=364)  # t + 365 days > D
    with pytest.raises(UsageError, match="after the decision date"):
        build_labels(_tables(), [late], known_before=D, horizon_days=365)


def test_window_ending_exactly_at_d_is_allowed() -> None:
    t = D - timedelta(days=365)
    out = build_labels(_tables(), [t], known_before=D, horizon_days=365).collect()
    assert out.height == 2


def test_minor_penalty_does_not_label_but_moderate_does() -> None:
    pen = {"enterprise_id": "e1", "decided_on": T + timedelta(days=10)}
    assert _label(_tables(penalties=[{**pen, "case_id": "c1", "severity": "minor"}]))["label"] is False
    assert _label(_tables(penalties=[{**pen, "case_id": "c1", "severity": "moderate"}]))["label"] is True


def test_revoked_licence_labels_only_when_revoked_inside_the_window() -> None:
    lic = {"license_id": "l1", "enterprise_id": "e1", "kind": "ccc", "issued_on": date(2020, 1, 1)}
    inside, before = T + timedelta(days=30), T - timedelta(days=30)
    assert (
        _label(_tables(licenses=[{**lic, "status": "revoked", "status_changed_on": inside}]))["label"] is True
    )
    assert (
        _label(_tables(licenses=[{**lic, "status": "revoked", "status_changed_on": before}]))["label"]
        is False
    )
    assert (
        _label(_tables(licenses=[{**lic, "status": "suspended", "status_changed_on": inside}]))["label"]
        is False
    )


def test_recall_and_failed_sampling_test_label() -> None:
    day = T + timedelta(days=5)
    recall = {
        "recall_id": "r1",
        "enterprise_id": "e1",
        "announced_on": day,
        "mode": "voluntary",
        "hazard": "low",
    }
    test = {"test_id": "s1", "enterprise_id": "e1", "sampled_on": day, "result": "fail"}
    assert _label(_tables(recalls=[recall]))["label"] is True
    assert _label(_tables(sampling_tests=[test]))["label"] is True


def test_observation_flags_record_random_inspections_and_kinds() -> None:
    row = _label(
        _tables(
            inspections=[
                _inspection(T + timedelta(days=3), "fail", "random"),
                _inspection(T + timedelta(days=9), "pass", "complaint"),
            ]
        )
    )
    assert (row["observed"], row["observed_random"], row["random_fail"]) == (True, True, True)
    assert row["observed_kinds"] == ["complaint", "random"]


def test_targeted_failure_is_not_a_random_failure() -> None:
    row = _label(_tables(inspections=[_inspection(T + timedelta(days=3), "fail", "targeted")]))
    assert (row["label"], row["observed_random"], row["random_fail"]) == (True, False, False)


def test_enterprise_without_events_is_unobserved_and_clean() -> None:
    out = build_labels(_tables(), [T], known_before=D).collect().filter(pl.col("enterprise_id") == "e2")
    row = out.row(0, named=True)
    assert (row["label"], row["observed"], row["observed_kinds"]) == (False, False, [])


def test_enterprise_established_after_the_snapshot_has_no_label_row() -> None:
    tables = _tables()
    tables["enterprises"] = tables["enterprises"].with_columns(
        pl.when(pl.col("enterprise_id") == "e2")
        .then(pl.lit(T))
        .otherwise(pl.col("established_on"))
        .alias("established_on")
    )
    out = build_labels(tables, [T], known_before=D).collect()
    assert out["enterprise_id"].to_list() == ["e1"]


def test_snapshot_plan_keeps_every_window_before_d_and_purges_test_overlap() -> None:
    plan = plan_snapshots(date(2026, 1, 1), snapshots=12, test_snapshots=3, horizon_days=365)
    horizon = timedelta(days=365)
    assert all(t + horizon <= date(2026, 1, 1) for t in plan.test)
    assert all(t + horizon <= plan.test[0] for t in plan.fit)
    assert len(plan.fit) == 12 and len(plan.test) == 3
    assert max(plan.train) < min(plan.valid) <= max(plan.valid) < min(plan.calib)


def test_critical_finding_recorded_conditional_labels_and_counts_as_a_random_failure() -> None:
    # CONTRACT section 2: a critical violation is adverse even when corrected on the spot.
    critical = _inspection(T + timedelta(days=3), "conditional", "random") | {"findings_critical": 1}
    row = _label(_tables(inspections=[critical]))
    assert (row["label"], row["random_fail"]) == (True, True)
    serious = _inspection(T + timedelta(days=3), "conditional", "random") | {"findings_serious": 2}
    row = _label(_tables(inspections=[serious]))
    assert (row["label"], row["random_fail"]) == (False, False)


def test_labels_work_without_the_findings_columns() -> None:
    tables = _tables(inspections=[_inspection(T + timedelta(days=3), "fail", "random")])
    findings = ("findings_minor", "findings_serious", "findings_critical")
    tables["inspections"] = tables["inspections"].drop(*findings)
    assert _label(tables)["label"] is True


def _months(first: date, n: int) -> list[date]:
    return [add_months(first, k) for k in range(n)]


@pytest.mark.parametrize(("window", "expected"), [
    (1, [date(2024, 3, 1)]),
    (3, [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]),
])
def test_a_visit_is_a_row_for_each_month_start_whose_window_holds_it(window: int,
                                                                     expected: list[date]) -> None:
    tables = _tables(inspections=[_inspection(date(2024, 3, 15), "fail", "random"),
                                  _inspection(date(2024, 4, 1), "pass", "random")])
    rows = visit_rows(tables, _months(date(2023, 10, 1), 6), known_before=D, window_months=window).collect()
    march = rows.filter(pl.col("day") == date(2024, 3, 15))
    assert march["as_of"].to_list() == expected
    assert march["label"].to_list() == [True] * len(expected)
    # The April visit's rows stop at the last snapshot given (2024-03-01): never a row for a month
    # outside ``as_of``.
    april = rows.filter(pl.col("day") == date(2024, 4, 1))["as_of"].to_list()
    assert april == ([] if window == 1 else [date(2024, 2, 1), date(2024, 3, 1)])


def test_the_inspection_plan_keeps_every_visit_window_before_d() -> None:
    day = date(2026, 1, 1)
    for window in (1, 3, 6):
        cfg = TrainConfig(visit_window_months=window, inspection_snapshots=36)
        plan = snapshot_plans(day, cfg)["inspection"]
        assert len(plan.fit) == 36 and len(plan.test) == 3
        # a window of W months from each test month ends by D; fit windows end by the first test month
        assert all(add_months(t, window) <= day for t in plan.test)
        # the latest such month or one before (31-day months: a conservative count, never an overlap)
        assert add_months(plan.test[-1], window + 2) > day
        assert all(add_months(t, window) <= plan.test[0] for t in plan.fit)
    # Not given: 24 months, fewer when the lake's visits start later, never fewer than --snapshots.
    assert snapshot_plans(day, TrainConfig())["inspection"].fit == plan_snapshots(
        day, 24, 3, VISIT_MONTH_DAYS).fit
    late = snapshot_plans(day, TrainConfig(), first_visit=date(2024, 3, 15))["inspection"]
    assert late.fit[0] == date(2024, 3, 1) and 12 < len(late.fit) < 24
    assert len(snapshot_plans(day, TrainConfig(), first_visit=date(2025, 6, 1))["inspection"].fit) == 12
    assert len(snapshot_plans(day, TrainConfig(snapshots=48))["inspection"].fit) == 48


@pytest.mark.parametrize(("field", "value"), [("visit_window_months", 0), ("visit_window_months", 13),
                                              ("inspection_snapshots", 2)])
def test_visit_window_and_inspection_months_are_checked(field: str, value: int) -> None:
    with pytest.raises(UsageError, match=field):
        TrainConfig(**{field: value}).validate()
