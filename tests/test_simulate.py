"""simulate-policy: uniform vs graded vs top-k at equal capacity, judged by the ground truth."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from riskengine.supervision.policy import load_policy
from riskengine.supervision.simulate import (
    POLICIES,
    default_year,
    grades_from_truth,
    read_source_table,
    read_truth,
    simulate_policies,
)

POLICY = load_policy(None)


def toy_city(n: int = 600, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A city where risk is concentrated: 10% of enterprises fail often, the rest rarely."""
    rng = np.random.default_rng(seed)
    ids = [f"E{i:04d}" for i in range(n)]
    base = np.where(rng.random(n) < 0.1, 0.5, 0.03)
    truth = pl.DataFrame({
        "enterprise_id": [e for e in ids for _ in range(24)],
        "month": [date(2024 + m // 12, m % 12 + 1, 1) for _ in ids for m in range(24)],
        "p_fail": np.repeat(base, 24),
    })
    enterprises = pl.DataFrame({"enterprise_id": ids, "name": ids, "district": ["420106"] * n,
                                "sector": ["retail"] * n, "status": ["active"] * n})
    return truth, enterprises


def toy_grades(truth: pl.DataFrame, enterprises: pl.DataFrame) -> pl.DataFrame:
    return grades_from_truth(truth, enterprises, date(2025, 1, 1))


def test_graded_policy_finds_at_least_twice_uniform_and_keeps_everyone_above_one_percent():
    truth, enterprises = toy_city()
    grades = grades_from_truth(truth, enterprises, date(2025, 1, 1), noise=0.5, seed=1)
    result = simulate_policies(grades, truth, 2025, capacity=15, policy=POLICY, seed=2)
    rows = {r["policy"]: r for r in result.policies.iter_rows(named=True)}
    assert set(rows) == set(POLICIES)
    assert rows["graded"]["expected_findings_per_100"] >= 2 * rows["uniform"]["expected_findings_per_100"]
    assert rows["graded"]["min_annual_probability"] >= 0.01
    assert result.meta["target_met"] is True


def test_every_policy_uses_the_same_capacity():
    truth, enterprises = toy_city()
    grades = grades_from_truth(truth, enterprises, date(2025, 1, 1))
    result = simulate_policies(grades, truth, 2025, capacity=15, policy=POLICY)
    assert result.policies["inspections"].to_list() == [15 * 12] * 3


def test_random_share_is_full_for_uniform_and_zero_for_top_k():
    truth, enterprises = toy_city()
    result = simulate_policies(toy_grades(truth, enterprises), truth, 2025, 15, POLICY)
    shares = dict(zip(result.policies["policy"], result.policies["random_share"], strict=True))
    assert shares["uniform"] == 1.0 and shares["top_k"] == 0.0
    assert 0.0 < shares["graded"] <= 1.0


def test_top_k_exempts_the_low_scored_enterprises():
    truth, enterprises = toy_city()
    result = simulate_policies(toy_grades(truth, enterprises), truth, 2025, 15, POLICY)
    top_k = result.policies.filter(pl.col("policy") == "top_k").row(0, named=True)
    assert top_k["min_annual_probability"] == 0.0
    assert top_k["enterprises_inspected"] == 15 * 12  # nobody twice


def test_coverage_rises_with_grade_under_the_graded_policy():
    truth, enterprises = toy_city()
    result = simulate_policies(toy_grades(truth, enterprises), truth, 2025, 15, POLICY)
    graded = result.coverage.filter(pl.col("policy") == "graded").sort("grade")
    # one row per grade the toy city has (an empty table would be sorted too)
    assert graded["grade"].to_list() == sorted(toy_grades(truth, enterprises)["grade"].unique().to_list())
    assert graded.height >= 3
    rates = graded["mean_annual_probability"].to_list()
    assert rates == sorted(rates) and rates[-1] > rates[0]


def test_same_seed_gives_the_same_simulation():
    truth, enterprises = toy_city()
    grades = grades_from_truth(truth, enterprises, date(2025, 1, 1))
    first = simulate_policies(grades, truth, 2025, 15, POLICY, seed=4)
    assert first.policies.equals(simulate_policies(grades, truth, 2025, 15, POLICY, seed=4).policies)


def test_graded_beats_uniform_on_the_generated_city(small_city: Path):
    truth = read_truth(small_city)
    enterprises = read_source_table(small_city, "enterprises").filter(pl.col("status") == "active")
    year = default_year(truth)
    grades = grades_from_truth(truth, enterprises, date(year, 1, 1), noise=0.5, seed=1)
    result = simulate_policies(grades, truth, year, 20, POLICY, seed=0,
                               history=read_source_table(small_city, "inspections"))
    assert result.meta["graded_lift_vs_uniform"] >= 2.0
    assert result.policies.filter(pl.col("policy") == "graded")["min_annual_probability"][0] >= 0.01


def test_simulate_policy_command_prints_table_and_writes_json_and_png(small_city: Path, tmp_path: Path,
                                                                      capsys):
    from riskengine.cli import main

    out = tmp_path / "sim.json"
    with pytest.raises(SystemExit) as exit_:
        main(["simulate-policy", "--city", str(small_city), "--capacity", "20", "--seed", "1",
              "--out", str(out)])
    assert exit_.value.code == 0
    assert "graded" in capsys.readouterr().out
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [p["policy"] for p in report["policies"]] == list(POLICIES)
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")


def test_simulate_policy_without_truth_is_a_clear_error(tmp_path: Path, capsys):
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["simulate-policy", "--city", str(tmp_path), "--capacity", "5"])
    assert exit_.value.code == 2
    assert "no ground truth" in capsys.readouterr().err
