"""``--capacity policy`` asks for exactly what the policy needs, checked from above as well as below:
every mandatory item plus the smallest draw giving each other enterprise its stratum's ratio / 12 a
month and, over 12 months, at least a 1 % chance (the floor factor)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from riskengine.supervision.capacity import capacity_for_policy

FLOOR_MONTH = 1 - 0.99 ** (1 / 12)  # 12 monthly draws at this chance give 1 % a year


def _population(*strata: tuple[int, float], district: str = "420106") -> pl.DataFrame:
    ratios = [r for n, r in strata for _ in range(n)]
    return pl.DataFrame({"enterprise_id": [f"{district}-{i}" for i in range(len(ratios))],
                         "district": [district] * len(ratios), "ratio": ratios})


def test_ratios_above_the_floor_ask_for_exactly_their_sum_plus_the_mandatory_items() -> None:
    population = _population((1200, 0.12))           # 1 % a month each: 12 draws
    mandatory = pl.DataFrame({"enterprise_id": population["enterprise_id"][:3]})
    assert capacity_for_policy(population, mandatory) == {"420106": 12 + 3}


def test_a_ratio_below_the_yearly_floor_is_raised_to_it_and_no_further() -> None:
    population = _population((2400, 0.006))          # 0.05 % a month: below the 1 %-a-year floor
    expected = math.ceil(2400 * FLOOR_MONTH)         # 2.009 -> 3 (without the floor factor: 2)
    assert expected == 3
    none = pl.DataFrame({"enterprise_id": []}, schema={"enterprise_id": str})
    assert capacity_for_policy(population, none) \
        == {"420106": expected}


def test_mixed_strata_scale_the_whole_draw_by_the_floor_factor() -> None:
    population = _population((1000, 0.006), (100, 0.12))
    monthly = 1000 * 0.006 / 12 + 100 * 0.12 / 12   # 1.5
    expected = math.ceil(monthly * FLOOR_MONTH / (0.006 / 12))  # 2.51 -> 3
    assert expected == 3
    none = pl.DataFrame({"enterprise_id": []}, schema={"enterprise_id": str})
    assert capacity_for_policy(population, none) == {"420106": expected}


@pytest.mark.parametrize("n", [1, 5])
def test_the_draw_never_exceeds_the_enterprises_left_to_draw_from(n: int) -> None:
    population = _population((n, 1.0))
    mandatory = pl.DataFrame({"enterprise_id": population["enterprise_id"][:1]})
    assert capacity_for_policy(population, mandatory) == {"420106": 1 + math.ceil((n - 1) / 12)}
