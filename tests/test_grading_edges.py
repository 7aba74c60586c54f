"""Exact edges of the default grading: each band edge, the hysteresis margin and the R5 age limit are
tested one point (or one day) on each side, with the defaults read as a user gets them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest

from models.grading import (
    DEFAULT_BAND_EDGES,
    F_AGE_DAYS,
    F_NEVER_INSPECTED,
    HARD_RULES,
    apply_grading,
    grade_from_score,
    probability_from_score,
    rule_flags,
    score_from_probability,
)
from riskengine.core.config import get_settings
from tests.test_grading import clean_features


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The settings a user gets with no environment overrides."""
    monkeypatch.delenv("RISKENGINE_GRADES__BAND_EDGES", raising=False)
    monkeypatch.delenv("RISKENGINE_GRADES__HYSTERESIS", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# The documented defaults (README, models/grading docstring): B from 450, C from 620, D from 750.
@pytest.mark.parametrize(("score", "expected"), [
    (449, "A"), (450, "B"), (619, "B"), (620, "C"), (749, "C"), (750, "D"),
])
def test_default_band_edges_exactly(score: int, expected: str) -> None:
    assert grade_from_score(score) == expected
    # the same through the whole grading path with no previous grade
    out = apply_grading(pl.Series(["E1"]), np.array([score]), clean_features())
    assert out["model_grade"][0] == expected


def test_the_documented_constant_is_the_settings_default() -> None:
    assert tuple(get_settings().grades.band_edges) == DEFAULT_BAND_EDGES == (450, 620, 750)


def _regrade(score: int, previous: str) -> str:
    prev = pl.DataFrame({"enterprise_id": ["E1"], "grade": [previous]})
    out = apply_grading(pl.Series(["E1"]), np.array([score]), clean_features(), prev)
    return out["model_grade"][0]


# Default hysteresis is 20 points: a B keeps B while 450 - 20 <= score < 620 + 20.
@pytest.mark.parametrize(("score", "expected"), [
    (430, "B"), (429, "A"), (639, "B"), (640, "C"),
])
def test_default_hysteresis_of_20_points_both_sides_of_both_edges(score: int, expected: str) -> None:
    assert _regrade(score, "B") == expected


@pytest.mark.parametrize(("score", "previous", "expected"), [
    (469, "A", "A"), (470, "A", "B"),      # an A rises to B only at 450 + 20
    (600, "C", "C"), (599, "C", "B"),      # a C falls to B only below 620 - 20
])
def test_hysteresis_margin_from_the_other_side(score: int, previous: str, expected: str) -> None:
    assert _regrade(score, previous) == expected


@pytest.mark.parametrize(("exact", "expected"), [(449.7, 450), (449.4, 449), (750.5001, 751), (619.6, 620)])
def test_score_rounds_to_the_nearest_point_not_down(exact: float, expected: int) -> None:
    p = probability_from_score(exact)
    assert score_from_probability(p).item() == expected


def test_a_probability_just_below_an_edge_that_rounds_up_is_graded_in_the_higher_band() -> None:
    score = score_from_probability(probability_from_score(449.7)).item()
    assert grade_from_score(score) == "B"


# R5: "established less than a year ago" — under 365 days old fires, 365 days does not.
@pytest.mark.parametrize(("age_days", "fires"), [(364, True), (365, False), (366, False), (0, True)])
def test_r5_young_enterprise_rule_at_exactly_one_year(age_days: int, fires: bool) -> None:
    features = clean_features(**{F_AGE_DAYS: age_days, F_NEVER_INSPECTED: 1})
    flags = rule_flags(features, HARD_RULES)
    assert flags["R5_NEW_NO_HISTORY"][0] is fires
    out = apply_grading(pl.Series(["E1"]), np.array([100]), features)
    assert out["grade"][0] == ("B" if fires else "A")
