"""The 双随机 draw's arithmetic (riskengine/supervision/draw.py), with values worked out by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from riskengine.supervision.draw import (
    inclusion_probabilities,
    scale_probabilities,
    stratified_draw,
    systematic_round,
)


def test_scaling_multiplies_by_one_factor_to_the_total() -> None:
    got = scale_probabilities(np.array([0.1, 0.2, 0.3]), 1.2)
    assert got.tolist() == pytest.approx([0.2, 0.4, 0.6])


def test_scaling_caps_at_one_and_spreads_the_rest_again() -> None:
    # 2.5 over (0.1, 0.1, 0.8): factor 2.5 would give 2.0 to the last; capped at 1, the other two
    # share 1.5 at 0.75 each (and neither reaches 1)
    assert scale_probabilities(np.array([0.1, 0.1, 0.8]), 2.5).tolist() == pytest.approx([0.75, 0.75, 1.0])
    # a cap that forces a second cap: (0.1, 0.4, 0.5) to 2.5 -> 0.5 and 0.4 capped in turn
    assert scale_probabilities(np.array([0.1, 0.4, 0.5]), 2.5).tolist() == pytest.approx([0.5, 1.0, 1.0])
    # a value landing exactly on 1 counts as capped
    assert scale_probabilities(np.array([0.25, 0.5]), 1.5).tolist() == pytest.approx([0.5, 1.0])


@pytest.mark.parametrize(("total", "expected"), [
    (0.0, [0.0, 0.0]), (-1.0, [0.0, 0.0]), (2.0, [1.0, 1.0]), (5.0, [1.0, 1.0]),
])
def test_scaling_edges_nothing_or_everyone(total: float, expected: list[float]) -> None:
    got = scale_probabilities(np.array([0.1, 0.3]), total)
    assert got.tolist() == expected and got.dtype == np.float64


def test_scaling_nothing_gives_nothing() -> None:
    assert scale_probabilities(np.array([]), 3.0).size == 0


class FixedStart:
    """A generator whose uniform start is fixed (to check the systematic rounding by hand)."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u


@pytest.mark.parametrize(("u", "counts"), [
    (0.0, [1, 1, 1]), (0.5, [1, 1, 2]), (0.95, [2, 0, 2]),
])
def test_systematic_rounding_from_a_known_start(u: float, counts: list[int]) -> None:
    # cumulative 0, 1.4, 2.0, 3.5; points floor(cum + u), counts their differences
    got = systematic_round(np.array([1.4, 0.6, 1.5]), FixedStart(u))  # type: ignore[arg-type]
    assert got.tolist() == counts and got.dtype == np.int64


def test_systematic_rounding_is_not_fooled_by_float_sums() -> None:
    # ten times 0.1 sums to 0.9999999999999999: still one draw from a start of 0
    assert systematic_round(np.full(10, 0.1), FixedStart(0.0)).sum() == 1  # type: ignore[arg-type]


def test_systematic_rounding_keeps_whole_expectations_exact() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert systematic_round(np.array([2.0, 0.0, 3.0]), rng).tolist() == [2, 0, 3]
    assert systematic_round(np.array([]), rng).tolist() == []


def test_systematic_rounding_is_floor_or_ceil_and_unbiased() -> None:
    rng = np.random.default_rng(1)
    expected = np.array([0.3, 1.7, 2.5, 0.5])
    runs = np.array([systematic_round(expected, rng) for _ in range(4000)])
    assert ((runs == np.floor(expected)) | (runs == np.ceil(expected))).all()
    assert set(runs.sum(axis=1)) <= {5}
    assert runs.mean(axis=0) == pytest.approx(expected, abs=0.05)


def test_inclusion_probabilities_are_ratio_over_twelve_scaled_and_sorted_by_id() -> None:
    frame = pl.DataFrame({"enterprise_id": ["E2", "E1", "E3"], "ratio": [0.6, 1.2, 2.4]})
    got = inclusion_probabilities(frame, 0.35)
    assert got["enterprise_id"].to_list() == ["E1", "E2", "E3"]
    # base 0.1, 0.05, 0.2 (sum 0.35): factor 1
    assert got["inclusion_probability"].to_list() == pytest.approx([0.1, 0.05, 0.2])


def _population(n_a: int, n_b: int, ratio: float = 1.2) -> pl.DataFrame:
    return pl.DataFrame({
        "enterprise_id": [f"E{i:03d}" for i in range(n_a + n_b)],
        "grade": ["A"] * n_a + ["B"] * n_b,
        "sector": ["retail"] * (n_a + n_b),
        "ratio": [ratio] * (n_a + n_b),
    })


def test_a_draw_with_whole_stratum_expectations_takes_exactly_them() -> None:
    # 20 + 40 enterprises at ratio 1.2 (0.1 a month each) with capacity 6: 2 from A, 4 from B
    population = _population(20, 40)
    for seed in range(10):
        drawn = stratified_draw(population, 6, np.random.default_rng(seed))
        assert drawn.group_by("grade").len().sort("grade").rows() == [("A", 2), ("B", 4)]
        assert drawn["enterprise_id"].n_unique() == 6
        assert drawn["inclusion_probability"].to_list() == pytest.approx([0.1] * 6)


def test_a_draw_never_takes_more_than_a_stratum_holds() -> None:
    drawn = stratified_draw(_population(2, 3, ratio=100.0), 50, np.random.default_rng(0))
    assert drawn.height == 5 and drawn["inclusion_probability"].to_list() == [1.0] * 5


@pytest.mark.parametrize("capacity", [0, -3])
def test_no_capacity_or_nobody_draws_nobody(capacity: int) -> None:
    none = stratified_draw(_population(5, 5), capacity, np.random.default_rng(0))
    assert none.height == 0 and "inclusion_probability" in none.columns
    assert stratified_draw(_population(0, 0), 5, np.random.default_rng(0)).height == 0


def test_the_same_seed_draws_the_same_and_another_seed_another() -> None:
    population = _population(200, 200, ratio=0.6)
    first = stratified_draw(population, 10, np.random.default_rng(7))["enterprise_id"].to_list()
    assert stratified_draw(population, 10, np.random.default_rng(7))["enterprise_id"].to_list() == first
    assert stratified_draw(population, 10, np.random.default_rng(8))["enterprise_id"].to_list() != first


def test_scaling_one_enterprise_gives_it_the_total() -> None:
    assert scale_probabilities(np.array([0.2]), 0.5).tolist() == pytest.approx([0.5])


def test_scaling_caps_in_rounds_until_nothing_more_reaches_one() -> None:
    # (0.1, 0.35, 0.55) to 2.4: 0.55 capped first, then 0.35 (at 3.11x), the rest takes 0.4
    assert scale_probabilities(np.array([0.1, 0.35, 0.55]), 2.4).tolist() == pytest.approx([0.4, 1.0, 1.0])


def test_scaling_returns_float_probabilities_without_dividing_by_zero() -> None:
    with np.errstate(all="raise"):  # a total equal to the count is "everyone", not 0/0
        assert scale_probabilities(np.array([0.1, 0.3]), 2.0).tolist() == [1.0, 1.0]
    for total in (0.0, 3.0):
        assert scale_probabilities(np.array([1, 2]), total).dtype == np.float64  # even from integers


def test_systematic_rounding_of_one_stratum_and_of_none() -> None:
    assert systematic_round(np.array([2.0]), FixedStart(0.3)).tolist() == [2]  # type: ignore[arg-type]
    assert systematic_round(np.array([]), FixedStart(0.3)).dtype == np.int64  # type: ignore[arg-type]


def test_strata_expecting_one_draw_one_and_a_single_enterprise_can_be_drawn() -> None:
    # 10 + 40 at 0.1 a month, capacity 5: one from A, four from B
    drawn = stratified_draw(_population(10, 40), 5, np.random.default_rng(0))
    assert drawn.group_by("grade").len().sort("grade").rows() == [("A", 1), ("B", 4)]
    one = stratified_draw(_population(1, 0, ratio=12.0), 1, np.random.default_rng(0))
    assert one["enterprise_id"].to_list() == ["E000"] and one["inclusion_probability"].to_list() == [1.0]


def test_the_draw_takes_the_whole_capacity_whatever_order_the_strata_come_in() -> None:
    # three strata expecting 0.5, 0.5 and 4: some seeds draw nothing from a small one, never fewer overall
    population = pl.concat([
        _population(5, 5).with_columns(pl.lit("wire_cable").alias("sector")),
        _population(40, 0).with_columns(pl.lit("C").alias("grade")),
    ]).with_columns(pl.format("E{}", pl.int_range(pl.len())).alias("enterprise_id"))
    sizes = set()
    for seed in range(30):
        drawn = stratified_draw(population, 5, np.random.default_rng(seed))
        assert drawn.height == 5
        sizes.add(tuple(drawn.group_by("grade").len().sort("grade").rows()))
    assert len(sizes) > 1  # the small strata really were drawn 0 or 1 times


def test_an_empty_draw_still_has_a_float_probability_column() -> None:
    none = stratified_draw(_population(5, 5), 0, np.random.default_rng(0))
    assert none.schema["inclusion_probability"] == pl.Float64
