"""Evaluation metrics (models.evaluate) against values computed by hand."""

from __future__ import annotations

import math

import pytest

from models.evaluate import auc, brier, capture_at, ks, pr_auc, rate_by_grade, rates_rise_strictly, spearman
from riskengine.core.errors import UsageError

Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_auc_counts_correctly_ordered_pairs() -> None:
    # Pairs (pos, neg): (0.35>0.1) yes, (0.35>0.4) no, (0.8>0.1) yes, (0.8>0.4) yes -> 3/4.
    assert auc(Y, S) == pytest.approx(0.75)


def test_auc_is_nan_with_one_class() -> None:
    assert math.isnan(auc([0, 0], [0.1, 0.2]))


def test_pr_auc_is_average_precision() -> None:
    # Ranked: 0.8 (pos, P=1), 0.4 (neg), 0.35 (pos, P=2/3), 0.1 -> (1 + 2/3) / 2.
    assert pr_auc(Y, S) == pytest.approx((1 + 2 / 3) / 2)


def test_ks_is_the_largest_cdf_gap() -> None:
    # Negatives at 0.1, 0.4; positives at 0.35, 0.8: after 0.1 the CDF gap is 0.5 - 0 = 0.5.
    assert ks(Y, S) == pytest.approx(0.5)


def test_brier_is_mean_squared_error() -> None:
    assert brier([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)


def test_capture_at_10_percent_counts_adverse_outcomes_in_the_top_decile() -> None:
    y = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    score = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert capture_at(y, score, 0.10) == pytest.approx(0.5)  # top 1 of 10 holds 1 of 2 adverse outcomes
    assert capture_at(y, score, 0.50) == pytest.approx(1.0)


def test_capture_shares_ties_at_the_cut_off_fairly() -> None:
    # Two rows tie at the top, only one fits: each counts half, whatever the row order.
    assert capture_at([1, 0, 0, 0], [5, 5, 1, 0], 0.25) == pytest.approx(0.5)
    assert capture_at([0, 1, 0, 0], [5, 5, 1, 0], 0.25) == pytest.approx(0.5)


def test_capture_rejects_a_fraction_outside_zero_one() -> None:
    with pytest.raises(UsageError, match="fraction"):
        capture_at(Y, S, 0.0)


def test_rate_by_grade_lists_every_grade() -> None:
    rates = rate_by_grade([0, 1, 0, 1, 1], ["A", "A", "B", "D", "D"])
    assert rates["grade"].to_list() == ["A", "B", "C", "D"]
    assert rates["n"].to_list() == [2, 1, 0, 2]
    assert rates["rate"].to_list()[:2] == [0.5, 0.0]
    assert rates["rate"].to_list()[3] == 1.0


def test_rates_rise_strictly_needs_every_grade_and_strict_order() -> None:
    assert rates_rise_strictly(rate_by_grade([0, 0, 1, 0, 1, 1, 1, 1], list("AABBCCDD"))) is False  # B == C
    # A 0/3, B 1/2, C 2/3, D 1/1.
    assert rates_rise_strictly(rate_by_grade([0, 0, 0, 1, 0, 1, 1, 0, 1], list("AAABBCCCD"))) is True
    assert rates_rise_strictly(rate_by_grade([0, 1, 1], list("ABD"))) is False  # no C


def test_labels_must_be_binary() -> None:
    with pytest.raises(UsageError, match="0 or 1"):
        auc([0, 2], [0.1, 0.2])


def test_spearman_is_rank_correlation() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 25, 1000]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
