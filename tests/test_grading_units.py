"""Grading rules at their edges, each refusal in its own words (models/grading.py): the score anchor
of a model's own base rate, probability edges, hard rules over missing values and custom rule sets,
hysteresis for enterprises new to the grades, the baseline cap row by row."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.grading import (
    BASELINE_CAP_RULE,
    F_AGE_DAYS,
    F_DISHONEST,
    F_EVENTS_TOTAL,
    F_LICENSE_SUSPENDED,
    F_NEVER_INSPECTED,
    F_ORDERED_HIGH_RECALLS,
    HARD_RULES,
    apply_grading,
    check_band_edges,
    probability_from_score,
    rule_flags,
    score_float,
    score_from_probability,
    stable_grade_index,
)
from riskengine.core.errors import ModelError, UsageError
from tests.test_grading import EDGES, clean_features

R3 = next(r for r in HARD_RULES if r.id == "R3_LICENSE_SUSPENDED")


# --- the score's anchor -------------------------------------------------------------------------------


def test_a_models_own_base_rate_scores_500_and_doubling_its_odds_adds_80() -> None:
    # base rate 45 % (odds 9:11): p = 0.45 scores 500; odds 18:11 (p = 18/29) score 580; halved 420
    assert score_from_probability([0.45, 18 / 29, 9 / 31], base_rate=0.45).tolist() == [500, 580, 420]
    assert probability_from_score([500, 580], base_rate=0.45) == pytest.approx([0.45, 18 / 29])
    assert score_float(0.45, base_rate=0.45) == pytest.approx(500.0)


@pytest.mark.parametrize("rate", [0.0, 1.0, 1.5, -0.1])
def test_a_base_rate_outside_0_to_1_is_refused(rate: float) -> None:
    with pytest.raises(ModelError) as refused:
        score_from_probability([0.5], base_rate=rate)
    assert str(refused.value) == f"score_base_rate must lie in (0, 1); got {rate}"


def test_base_rates_just_inside_the_edges_are_accepted() -> None:
    assert score_from_probability([0.5], base_rate=0.999)[0] < 500 < score_from_probability([0.5], 0.001)[0]


def test_probability_edges_are_scored_and_values_outside_named() -> None:
    assert score_from_probability([0, 1]).tolist() == [0, 1000]  # whole numbers are probabilities too
    edges = score_float([0.0, 1.0])
    assert np.isfinite(edges).all()  # kept away from log(0) by a 1e-12 margin
    assert edges.tolist() == pytest.approx(score_float([1e-12, 1 - 1e-12]).tolist())
    with pytest.raises(ModelError) as refused:
        score_float([0.5, 1.5, -0.2])
    assert str(refused.value) == "probability must lie in [0, 1]; got 1.5"  # the first one
    with pytest.raises(ModelError) as negative:
        score_float([0.0, -0.2])
    assert str(negative.value) == "probability must lie in [0, 1]; got -0.2"
    with pytest.raises(ModelError) as missing:
        score_float([0.1, np.nan])
    assert str(missing.value) == "probability is NaN; the model produced no probability for some rows"


# --- hard rules over missing values and custom rule sets ---------------------------------------------


def test_a_young_enterprise_with_unknown_event_counts_counts_as_without_history() -> None:
    features = clean_features(**{F_AGE_DAYS: 100, F_NEVER_INSPECTED: 1}).with_columns(
        pl.lit(None, pl.Float64).alias(c) for c in F_EVENTS_TOTAL)
    assert rule_flags(features)["R5_NEW_NO_HISTORY"].to_list() == [True]


def test_an_enterprise_of_unknown_age_does_not_fire_the_young_enterprise_rule() -> None:
    features = clean_features(**{F_NEVER_INSPECTED: 1}).with_columns(
        pl.lit(None, pl.Float64).alias(F_AGE_DAYS))
    assert rule_flags(features)["R5_NEW_NO_HISTORY"].to_list() == [False]


def test_missing_rule_columns_are_all_named_and_no_rules_give_an_empty_frame_of_the_same_height() -> None:
    features = clean_features(3).drop(F_DISHONEST, F_LICENSE_SUSPENDED)
    with pytest.raises(ModelError) as refused:
        rule_flags(features)
    assert str(refused.value).endswith(f": {F_LICENSE_SUSPENDED}, {F_DISHONEST}")  # sorted
    assert rule_flags(features, ()).shape == (3, 0)


def test_grading_with_no_rules_is_the_model_grade() -> None:
    out = apply_grading(pl.Series(["E1", "E2"]), np.array([100, 900]), clean_features(2), edges=EDGES,
                        hysteresis=0, rules=())
    assert out.rows() == [("A", "A", None, []), ("D", "D", None, [])]
    assert out.schema["fired"] == pl.List(pl.String)


def test_a_custom_rule_set_needs_only_its_own_columns() -> None:
    features = pl.DataFrame({F_LICENSE_SUSPENDED: [1, 0]})
    out = apply_grading(pl.Series(["E1", "E2"]), np.array([100, 100]), features, edges=EDGES, hysteresis=0,
                        rules=(R3,))
    assert out["grade"].to_list() == ["C", "A"] and out["rule"].to_list() == ["R3_LICENSE_SUSPENDED", None]


def test_a_rule_whose_floor_the_model_already_gave_does_not_claim_it() -> None:
    out = apply_grading(pl.Series(["E1"]), np.array([700]), clean_features(**{F_LICENSE_SUSPENDED: 1}),
                        edges=EDGES, hysteresis=0)
    assert out.row(0) == ("C", "C", None, ["R3_LICENSE_SUSPENDED"])


def test_of_two_rules_with_the_same_floor_the_first_names_the_change() -> None:
    features = clean_features(**{F_LICENSE_SUSPENDED: 1, F_ORDERED_HIGH_RECALLS: 1})
    out = apply_grading(pl.Series(["E1"]), np.array([100]), features, edges=EDGES, hysteresis=0)
    assert out.row(0, named=True)["rule"] == "R3_LICENSE_SUSPENDED"


# --- inputs and hysteresis ----------------------------------------------------------------------------


def test_negative_hysteresis_is_refused_in_its_own_words() -> None:
    with pytest.raises(UsageError) as refused:
        stable_grade_index(np.array([100.0]), np.array([-1]), EDGES, -1)
    assert str(refused.value) == "grades.hysteresis must be ≥ 0 points; got -1"


def test_scores_or_features_of_another_length_are_refused() -> None:
    with pytest.raises(ModelError) as refused:
        apply_grading(pl.Series(["E1", "E2"]), np.array([1, 2]), clean_features(3), edges=EDGES, hysteresis=0)
    assert str(refused.value) == "grading got 2 ids, 2 scores and 3 feature rows"
    with pytest.raises(ModelError, match="grading got 2 ids, 1 scores and 2 feature rows"):
        apply_grading(pl.Series(["E1", "E2"]), np.array([1]), clean_features(2), edges=EDGES, hysteresis=0)


def test_previous_grades_without_a_grade_column_are_refused_naming_the_columns() -> None:
    previous = pl.DataFrame({"enterprise_id": ["E1"], "score": [100]})
    with pytest.raises(UsageError) as refused:
        apply_grading(pl.Series(["E1"]), np.array([100]), clean_features(), previous, edges=EDGES,
                      hysteresis=20)
    assert str(refused.value) == (
        "previous grades need columns enterprise_id and grade; got enterprise_id, score")


def test_a_previous_grade_outside_a_to_d_is_refused_naming_the_grades() -> None:
    previous = pl.DataFrame({"enterprise_id": ["E1"], "grade": ["E"]})
    with pytest.raises(UsageError) as refused:
        apply_grading(pl.Series(["E1"]), np.array([100]), clean_features(), previous, edges=EDGES,
                      hysteresis=20)
    assert str(refused.value) == "previous grades: E1 has grade 'E'; expected one of A, B, C, D"


def test_an_enterprise_new_to_the_grades_gets_its_plain_band_beside_one_kept_by_hysteresis() -> None:
    previous = pl.DataFrame({"enterprise_id": ["E1", "E1"], "grade": ["B", "B"]})  # listed twice
    out = apply_grading(pl.Series(["E1", "E2"]), np.array([390, 390]), clean_features(2), previous,
                        edges=EDGES, hysteresis=20)
    assert out["model_grade"].to_list() == ["B", "A"]  # E2 had no grade: 390 is A, not kept near B


def test_hysteresis_follows_each_enterprise_whatever_order_the_previous_grades_come_in() -> None:
    n = 3000
    ids = pl.Series([f"E{i:05d}" for i in range(n)])
    grades = np.where(np.arange(n) % 2 == 0, "A", "B")
    previous = pl.DataFrame({"enterprise_id": ids, "grade": grades}).sample(fraction=1.0, shuffle=True,
                                                                              seed=3)
    out = apply_grading(ids, np.full(n, 400), clean_features(n), previous, edges=EDGES, hysteresis=20)
    assert out["model_grade"].to_list() == grades.tolist()  # 400 is on B's edge: each keeps its own


# --- the baseline cap, row by row ---------------------------------------------------------------------


def test_the_cap_lowers_only_eligible_rows_without_a_rule_and_keeps_the_others_reasons() -> None:
    features = pl.concat([clean_features(**{F_DISHONEST: 1}), clean_features(2)])
    out = apply_grading(pl.Series(["E1", "E2", "E3"]), np.array([500, 900, 500]), features, edges=EDGES,
                        hysteresis=0, baseline_cap="B", cap_eligible=np.array([True, True, True]))
    assert out.rows() == [
        ("B", "D", "R1_DISHONEST_LIST", ["R1_DISHONEST_LIST"]),  # a hard rule: never capped
        ("D", "B", BASELINE_CAP_RULE, [BASELINE_CAP_RULE]),
        ("B", "B", None, []),  # already at the cap: nothing to name
    ]


def test_without_eligibility_the_cap_lowers_nobody_and_without_rules_it_still_applies() -> None:
    out = apply_grading(pl.Series(["E1", "E2"]), np.array([900, 900]), clean_features(2), edges=EDGES,
                        hysteresis=0, baseline_cap="B")
    assert out["grade"].to_list() == ["D", "D"] and out["rule"].to_list() == [None, None]
    bare = apply_grading(pl.Series(["E1"]), np.array([900]), clean_features(), edges=EDGES, hysteresis=0,
                         rules=(), baseline_cap="B", cap_eligible=np.array([True]))
    assert bare.row(0) == ("D", "B", BASELINE_CAP_RULE, [BASELINE_CAP_RULE])


def test_a_cap_that_is_not_a_grade_is_refused_naming_the_grades() -> None:
    with pytest.raises(UsageError) as refused:
        apply_grading(pl.Series(["E1"]), np.array([900]), clean_features(), edges=EDGES, hysteresis=0,
                      baseline_cap="E")
    assert str(refused.value) == "baseline_cap must be one of A, B, C, D; got 'E'"


def test_band_edges_hold_three_increasing_scores_up_to_1000() -> None:
    assert check_band_edges((400, 650, 1000)) == (400.0, 650.0, 1000.0)
    with pytest.raises(UsageError) as refused:
        check_band_edges((400, 650))
    assert str(refused.value) == "band_edges must hold 3 scores (lower edges of B, C, D); got [400, 650]"
    with pytest.raises(UsageError, match=r"strictly increasing scores in \(0, 1000\]; got \[400, 400, 850\]"):
        check_band_edges((400, 400, 850))


def test_the_first_probability_out_of_range_is_named_even_after_a_1() -> None:
    with pytest.raises(ModelError, match=r"got 1\.5$"):
        score_float([1.0, 1.5])


def test_an_enterprise_with_two_previous_grades_is_graded_once() -> None:
    previous = pl.DataFrame({"enterprise_id": ["E1", "E1"], "grade": ["B", "C"]})
    out = apply_grading(pl.Series(["E1", "E2"]), np.array([390, 390]), clean_features(2), previous,
                        edges=EDGES, hysteresis=20)
    assert out.height == 2 and out["model_grade"][0] in ("A", "B") and out["model_grade"][1] == "A"


def test_grades_and_rules_are_text_columns_even_when_no_rule_fires() -> None:
    out = apply_grading(pl.Series(["E1"]), np.array([100]), clean_features(), edges=EDGES, hysteresis=0)
    assert out.schema["model_grade"] == out.schema["grade"] == out.schema["rule"] == pl.String
