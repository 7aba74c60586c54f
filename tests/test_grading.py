"""Grading: the score scale, bands, hard rules and stable regrading (models/grading.py)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.grading import (
    F_ABNORMAL_LISTED,
    F_AGE_DAYS,
    F_DISHONEST,
    F_EVENTS_TOTAL,
    F_LICENSE_REVOKED,
    F_LICENSE_SUSPENDED,
    F_NEVER_INSPECTED,
    F_NOTIFICATION_BREACHED,
    F_ORDERED_HIGH_RECALLS,
    F_SERIOUS_LISTED,
    apply_grading,
    grade_from_score,
    probability_from_score,
    score_float,
    score_from_probability,
)
from riskengine.core.config import get_settings
from riskengine.core.errors import ModelError, UsageError

EDGES = (400, 650, 850)


def clean_features(n: int = 1, **overrides: float) -> pl.DataFrame:
    """Feature rows of an established enterprise with a clean record; ``overrides`` set columns."""
    base = {F_DISHONEST: 0, F_LICENSE_REVOKED: 0, F_LICENSE_SUSPENDED: 0, F_ORDERED_HIGH_RECALLS: 0,
            F_AGE_DAYS: 2000, F_NEVER_INSPECTED: 0, **dict.fromkeys(F_EVENTS_TOTAL, 0),
            F_SERIOUS_LISTED: 0, F_ABNORMAL_LISTED: 0, F_NOTIFICATION_BREACHED: 0}
    base.update(overrides)
    return pl.DataFrame({k: [v] * n for k, v in base.items()})


def grade(score: int, previous: pl.DataFrame | None = None, hysteresis: float = 20,
          **features: float) -> dict:
    out = apply_grading(pl.Series(["E1"]), np.array([score]), clean_features(**features), previous,
                        edges=EDGES, hysteresis=hysteresis)
    return out.row(0, named=True)


# --- score scale -----------------------------------------------------------------------------------


def test_score_is_monotone_and_within_0_to_1000():
    p = np.linspace(0, 1, 20001)
    s = score_from_probability(p)
    assert s.dtype == np.int64
    assert s.min() == 0 and s.max() == 1000
    assert np.all(np.diff(s) >= 0)


def test_unrounded_score_is_strictly_increasing_in_probability():
    p = np.linspace(1e-6, 1 - 1e-6, 50001)
    assert np.all(np.diff(score_float(p)) > 0)


def test_score_anchor_and_points_to_double_the_odds():
    # p = 2 % (odds 1:49) scores 500; doubling the odds (2:49, p = 2/51) adds 80 points, halving
    # them (1:98, p = 1/99) takes 80 away.
    assert score_from_probability([0.02, 2 / 51, 1 / 99]).tolist() == [500, 580, 420]


def test_default_band_edges_map_back_to_documented_probabilities():
    edges = get_settings().grades.band_edges
    assert probability_from_score(list(edges)) == pytest.approx([0.013, 0.055, 0.151], abs=1e-3)


@pytest.mark.parametrize("bad", [[np.nan], [-0.1], [1.5]])
def test_invalid_probability_is_refused(bad):
    with pytest.raises(ModelError):
        score_from_probability(bad)


# --- bands -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("score", "expected"), [(0, "A"), (399, "A"), (400, "B"), (649, "B"),
                                                 (650, "C"), (849, "C"), (850, "D"), (1000, "D")])
def test_score_at_an_edge_belongs_to_the_higher_band(score, expected):
    assert grade_from_score(score, EDGES) == expected


def test_array_of_scores_gives_array_of_grades():
    assert grade_from_score(np.array([10, 500, 700, 900]), EDGES).tolist() == ["A", "B", "C", "D"]


def test_bands_come_from_settings_by_default(monkeypatch):
    monkeypatch.setenv("RISKENGINE_GRADES__BAND_EDGES", "[100, 200, 300]")
    get_settings.cache_clear()
    try:
        assert grade_from_score(np.array([150, 250, 350])).tolist() == ["B", "C", "D"]
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("edges", [(400, 300, 850), (400, 650), (0, 650, 850), (400, 650, 1200)])
def test_malformed_band_edges_are_refused(edges):
    with pytest.raises(UsageError, match="band_edges"):
        grade_from_score(500, edges)


# --- hard rules ------------------------------------------------------------------------------------


def test_model_grade_stands_when_no_rule_fires():
    assert grade(100) == {"model_grade": "A", "grade": "A", "rule": None, "fired": []}


def test_dishonesty_list_makes_grade_d():
    out = grade(100, **{F_DISHONEST: 1})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("A", "D", "R1_DISHONEST_LIST")


def test_revoked_licence_makes_grade_d():
    out = grade(500, **{F_LICENSE_REVOKED: 1})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("B", "D", "R2_LICENSE_REVOKED")


def test_suspended_licence_makes_grade_at_least_c():
    out = grade(100, **{F_LICENSE_SUSPENDED: 2})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("A", "C", "R3_LICENSE_SUSPENDED")


def test_ordered_high_hazard_recall_makes_grade_at_least_c():
    out = grade(500, **{F_ORDERED_HIGH_RECALLS: 1})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("B", "C", "R4_ORDERED_HIGH_HAZARD_RECALL")


def test_young_enterprise_without_history_cannot_be_a():
    out = grade(100, **{F_AGE_DAYS: 200, F_NEVER_INSPECTED: 1})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("A", "B", "R5_NEW_NO_HISTORY")


def test_serious_dishonesty_listing_makes_grade_d():
    out = grade(500, **{F_SERIOUS_LISTED: 1, F_ABNORMAL_LISTED: 1})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("B", "D", "R6_SERIOUS_DISHONEST_LISTED")
    assert out["fired"] == ["R6_SERIOUS_DISHONEST_LISTED", "R7_ABNORMAL_OPERATION_LISTED"]


def test_abnormal_operation_listing_makes_grade_at_least_c():
    out = grade(100, **{F_ABNORMAL_LISTED: 1})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("A", "C", "R7_ABNORMAL_OPERATION_LISTED")
    assert grade(900, **{F_ABNORMAL_LISTED: 1})["grade"] == "D"  # a floor, never a ceiling


def test_breached_notification_commitment_makes_grade_at_least_c():
    out = grade(500, **{F_NOTIFICATION_BREACHED: 1})
    assert (out["model_grade"], out["grade"]) == ("B", "C")
    assert out["rule"] == "R8_NOTIFICATION_COMMITMENT_BREACHED"


def test_young_enterprise_with_a_record_can_be_a():
    out = grade(100, **{F_AGE_DAYS: 200, F_NEVER_INSPECTED: 1, F_EVENTS_TOTAL[0]: 1})
    assert out["grade"] == "A" and out["rule"] is None


def test_rule_does_not_claim_a_grade_the_model_already_gave():
    out = grade(900, **{F_LICENSE_SUSPENDED: 1})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("D", "D", None)
    assert out["fired"] == ["R3_LICENSE_SUSPENDED"]


def test_highest_floor_names_the_change_when_several_rules_fire():
    out = grade(100, **{F_LICENSE_SUSPENDED: 1, F_DISHONEST: 1})
    assert (out["grade"], out["rule"]) == ("D", "R1_DISHONEST_LIST")
    assert out["fired"] == ["R1_DISHONEST_LIST", "R3_LICENSE_SUSPENDED"]


def test_missing_rule_column_is_named():
    with pytest.raises(ModelError, match=F_DISHONEST):
        apply_grading(pl.Series(["E1"]), np.array([100]), clean_features().drop(F_DISHONEST),
                      edges=EDGES, hysteresis=20)


# --- stable regrading ------------------------------------------------------------------------------


def prev(grade_letter: str, model_grade: str | None = None) -> pl.DataFrame:
    frame = pl.DataFrame({"enterprise_id": ["E1"], "grade": [grade_letter], "score": [0]})
    if model_grade is not None:
        frame = frame.with_columns(pl.lit(model_grade).alias("model_grade"))
    return frame


def test_small_move_across_an_edge_keeps_the_previous_grade():
    assert grade(390, prev("B"))["grade"] == "B"  # 10 points below B's edge, margin 20
    assert grade(410, prev("A"))["grade"] == "A"  # 10 points above B's edge


def test_large_move_across_an_edge_changes_the_grade():
    assert grade(379, prev("B"))["grade"] == "A"
    assert grade(420, prev("A"))["grade"] == "B"


def test_move_far_away_takes_the_plain_band():
    assert grade(900, prev("A"))["grade"] == "D"


def test_without_previous_grade_the_plain_band_applies():
    assert grade(410)["grade"] == "B"
    other = pl.DataFrame({"enterprise_id": ["E9"], "grade": ["A"], "score": [0]})
    assert grade(410, other)["grade"] == "B"


def test_zero_hysteresis_is_plain_banding():
    assert grade(399, prev("B"), hysteresis=0)["grade"] == "A"


def test_hard_rule_applies_at_once_despite_hysteresis():
    out = grade(410, prev("A"), **{F_DISHONEST: 1})
    assert (out["model_grade"], out["grade"], out["rule"]) == ("A", "D", "R1_DISHONEST_LIST")


def test_hysteresis_anchors_on_the_previous_model_grade_not_a_lifted_rule():
    # Last month a suspended licence forced C over a model grade of B; the licence is valid again.
    assert grade(640, prev("C", model_grade="B"))["grade"] == "B"


def test_previous_grade_outside_a_to_d_is_refused():
    with pytest.raises(UsageError, match="E1"):
        grade(100, prev("E"))


# --- the policy's baseline cap (issue 18) ------------------------------------------------------------


def capped(score: int, adverse: bool, **features: float) -> dict:
    """Grade a baseline-driven enterprise with or without an adverse record under a cap at C."""
    out = apply_grading(pl.Series(["E1"]), np.array([score]), clean_features(**features), None,
                        edges=EDGES, hysteresis=0, baseline_cap="C", cap_eligible=np.array([not adverse]))
    return out.row(0, named=True)


def test_baseline_cap_keeps_an_enterprise_without_adverse_record_at_the_cap():
    row = capped(900, adverse=False)
    assert (row["model_grade"], row["grade"], row["rule"]) == ("D", "C", "BASELINE_CAP")
    assert row["fired"] == ["BASELINE_CAP"]


def test_baseline_cap_does_not_touch_an_enterprise_with_an_adverse_record():
    row = capped(900, adverse=True)
    assert (row["grade"], row["rule"]) == ("D", None)


def test_baseline_cap_does_not_apply_when_a_hard_rule_fires():
    row = capped(900, adverse=False, **{F_LICENSE_SUSPENDED: 1})
    assert (row["grade"], row["rule"]) == ("D", None)


def test_baseline_cap_never_raises_a_grade():
    assert capped(700, adverse=False)["grade"] == "C"
    assert capped(100, adverse=False)["grade"] == "A"


def test_baseline_cap_must_be_a_grade():
    with pytest.raises(UsageError, match="baseline_cap must be one of"):
        capped_bad = apply_grading(pl.Series(["E1"]), np.array([900]), clean_features(), None, edges=EDGES,
                                   baseline_cap="E", cap_eligible=np.array([True]))
        del capped_bad
