"""The monitoring statistics: Wilson intervals, design-weighted rates, reversals that need evidence,
the trend test, PSI and the migration matrix."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.monitoring import migration, monotone, psi, rates, reversals, trend_test, wilson


def test_wilson_interval_matches_hand_computed_values():
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def cells(counts: dict[str, tuple[int, int]], weight: float = 1.0) -> pl.DataFrame:
    rows = []
    for grade, (n, k) in counts.items():
        rows += [{"grade": grade, "adverse": i < k, "weight": weight} for i in range(n)]
    return pl.DataFrame(rows)


def test_weighted_rate_is_the_hajek_estimate_and_equal_weights_change_nothing():
    frame = pl.DataFrame({"grade": ["A"] * 4, "adverse": [True, False, False, False],
                          "weight": [10.0, 10.0, 1.0, 1.0]})
    row = rates(frame, ["grade"]).row(0, named=True)
    assert row["rate"] == pytest.approx(10 / 22)
    assert row["n_eff"] == pytest.approx(22**2 / 202)
    assert rates(cells({"A": (10, 3)}, 7.0), ["grade"])["rate"][0] == pytest.approx(0.3)


def test_a_small_sample_reversal_is_not_tested_and_a_large_clear_one_is_significant():
    small = rates(cells({"A": (5, 2), "B": (5, 0), "C": (5, 1), "D": (5, 3)}), ["grade"])
    assert not monotone(small)
    assert reversals(small, min_n=20) == []
    large = rates(cells({"A": (300, 60), "B": (300, 15), "C": (300, 90), "D": (300, 150)}), ["grade"])
    found = {(r["lower"], r["higher"]): r["p"] for r in reversals(large, min_n=20)}
    assert found[("A", "B")] < 1e-6 and found[("B", "C")] > 0.5


def test_trend_test_finds_rising_rates_and_not_flat_ones():
    rising = rates(cells({"A": (100, 3), "B": (100, 8), "C": (100, 15), "D": (100, 30)}), ["grade"])
    flat = rates(cells({"A": (100, 10), "B": (100, 10), "C": (100, 10), "D": (100, 10)}), ["grade"])
    assert monotone(rising) and trend_test(rising)["p"] < 1e-6
    assert trend_test(flat)["p"] == pytest.approx(0.5, abs=0.01)


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = pl.Series(rng.normal(0, 1, 5000))
    assert psi(ref, pl.Series(rng.normal(0, 1, 5000))) < 0.02
    assert psi(ref, pl.Series(rng.normal(1, 1, 5000))) > 0.25
    assert psi(pl.Series(["a", "b"] * 50), pl.Series(["a"] * 100)) > 0.25


def test_missing_values_have_their_own_bin():
    ref = pl.Series([1.0, 2.0, 3.0, 4.0] * 25)
    assert psi(ref, pl.Series([1.0, 2.0, None, None] * 25)) > 0.25


def test_migration_counts_enterprises_graded_in_both_runs():
    before = pl.DataFrame({"enterprise_id": ["a", "b", "c"], "grade": ["A", "B", "D"]})
    after = pl.DataFrame({"enterprise_id": ["a", "b", "x"], "grade": ["A", "D", "A"]})
    matrix = {r["from"]: r for r in migration(before, after).iter_rows(named=True)}
    assert matrix["A"]["A"] == 1 and matrix["B"]["D"] == 1 and sum(matrix["D"][g] for g in "ABCD") == 0
