"""The evaluation an inspector understands (issue 11): days earlier (Chicago's food-inspection
measure) and hits per 100 visits at a plan's capacity, worked by hand; and train's one-line verdict on
whether the realized rates rise A < B < C < D."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from models.train import inspector_measures
from riskengine.cli.model_cmds import grade_check

DAY0 = date(2025, 10, 1)


def _rows(offsets: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"day": [DAY0 + timedelta(days=d) for d in offsets]})


def test_days_earlier_is_how_much_sooner_the_score_order_reaches_each_adverse_visit() -> None:
    # Five visits on days 0, 10, 20, 30, 40; the adverse ones happened on days 30 and 40.
    rows = _rows([0, 10, 20, 30, 40])
    y = np.array([0, 0, 0, 1, 1])
    # A score that puts them first: they get days 0 and 10 -> found 30 days earlier each.
    assert inspector_measures(rows, np.array([1, 2, 3, 5, 4]), y)["days_earlier"] == pytest.approx(30.0)
    # The visits' own order: nothing earlier.
    assert inspector_measures(rows, np.array([5, 4, 3, 2, 1]), y)["days_earlier"] == pytest.approx(0.0)
    # A score that delays adverse visits Boston made early counts against it: days 0 and 10 are
    # moved to 40 and 30 -> found 30 days later on average.
    early = np.array([1, 1, 0, 0, 0])
    assert inspector_measures(rows, np.array([1, 2, 3, 4, 5]), early)["days_earlier"] == pytest.approx(-30.0)


def test_hits_per_100_count_the_top_fifth_by_score_against_every_visit() -> None:
    rows = _rows(list(range(10)))
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    measures = inspector_measures(rows, np.array([9.0, 1, 1, 1, 1, 1, 1, 1, 1, 8.0]), y)
    assert measures["hits_per_100"] == pytest.approx(100.0)  # the top fifth (2 visits) both adverse
    assert measures["hits_per_100_all"] == pytest.approx(20.0)
    worse = inspector_measures(rows, np.array([0.0, 5, 5, 1, 1, 1, 1, 1, 1, 0.0]), y)
    assert worse["hits_per_100"] == pytest.approx(0.0)


def test_no_adverse_visit_gives_no_figure_rather_than_a_wrong_one() -> None:
    measures = inspector_measures(_rows([0, 1]), np.array([1.0, 2.0]), np.array([0, 0]))
    assert all(math.isnan(v) for v in measures.values())


def test_train_says_whether_the_rates_rise_and_names_each_population() -> None:
    metrics = pl.DataFrame([
        {"scorer": "lightgbm", "population": "random", "rate_A": 0.1, "rate_B": 0.2, "rate_C": 0.3,
         "rate_D": 0.4, "grades_monotone": 1.0},
        {"scorer": "lightgbm", "population": "inspected", "rate_A": 0.1, "rate_B": 0.2, "rate_C": 0.5,
         "rate_D": 0.4, "grades_monotone": 0.0},
        {"scorer": "points_scorecard", "population": "random", "rate_A": None, "rate_B": None,
         "rate_C": None, "rate_D": None, "grades_monotone": None},
    ])
    line = grade_check(metrics)
    assert "random: 0.100 < 0.200 < 0.300 < 0.400 (rise A<B<C<D)" in line
    assert "inspected: 0.100 < 0.200 < 0.500 < 0.400 (do NOT rise A<B<C<D)" in line
    assert "points_scorecard" not in line and line.count("\n") == 0


def test_train_warns_when_the_grades_cannot_follow_the_policy_shares() -> None:
    from riskengine.cli.model_cmds import band_warning

    shares = {"A": 0.5, "B": 0.3, "C": 0.13, "D": 0.07}

    def dist(values: dict[str, float]) -> pl.DataFrame:
        return pl.DataFrame({"grade": list(values), "share": list(values.values())})

    assert band_warning(dist({"A": 0.49, "B": 0.31, "C": 0.12, "D": 0.08}), shares) is None
    collapsed = band_warning(dist({"A": 0.0, "B": 1.0, "C": 0.0, "D": 0.0}), shares)
    assert collapsed is not None and "A, B, C, D off" in collapsed and collapsed.count("\n") == 0
    empty_d = band_warning(dist({"A": 0.5, "B": 0.3, "C": 0.2, "D": 0.0}), shares)
    assert empty_d is not None and "D off" in empty_d
    assert band_warning(dist({"A": 0.0, "B": 1.0, "C": 0.0, "D": 0.0}), None) is None  # fixed edges
