"""Grades that follow the population (issue 11): the policy's [grades] shares set the band edges at
training time from the graded population's own scores, so a bureau where 3 % of inspections fail and
one where 60 % fail both get four grades in about the policy's shares, and score 500 is an ordinary
enterprise of either."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.grading import grade_from_score, score_from_probability
from models.train import TrainConfig, population_bands, train_model
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import load_policy

SHARES = {"A": 0.5, "B": 0.3, "C": 0.13, "D": 0.07}


def _shares(probability: np.ndarray, base: float, edges: tuple[int, int, int]) -> dict[str, float]:
    score = score_from_probability(probability, base_rate=base)
    grades = np.asarray(grade_from_score(score, edges), dtype=str)
    return {g: float((grades == g).mean()) for g in "ABCD"}


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.6])
def test_edges_give_the_policy_shares_at_any_base_rate(rate: float) -> None:
    rng = np.random.default_rng(5)
    logit = np.log(rate / (1 - rate)) + rng.normal(0, 1.2, 20_000)
    probability = 1 / (1 + np.exp(-logit))
    base, edges = population_bands(probability, SHARES)
    assert base == pytest.approx(probability.mean())
    assert edges is not None and edges[0] < edges[1] < edges[2]
    for grade, share in _shares(probability, base, edges).items():
        assert share == pytest.approx(SHARES[grade], abs=0.01)
    # score 500 is the population's mean probability, whatever the base rate
    assert score_from_probability(np.array([probability.mean()]), base_rate=base)[0] == 500


def test_without_shares_the_settings_edges_apply() -> None:
    base, edges = population_bands(np.array([0.1, 0.2, 0.3]), None)
    assert edges is None and base == pytest.approx(0.2)


def test_tied_scores_move_an_edge_to_the_nearest_share_not_past_a_whole_tie() -> None:
    # 70 % of the population share one score: the A/B edge cannot split them, and the edges stay
    # strictly increasing.
    probability = np.r_[np.full(700, 0.05), np.linspace(0.06, 0.5, 300)]
    base, edges = population_bands(probability, SHARES)
    assert edges is not None and edges[0] < edges[1] < edges[2]
    shares = _shares(probability, base, edges)
    assert shares["A"] == pytest.approx(0.7)  # nearer the target 50 % than 0 % is
    assert all(shares[g] > 0 for g in "CD")


def _recoded_lake(small_city: Path, tmp_path: Path, fail_share: float) -> Path:
    """The small city with its inspections' outcomes redrawn so that ``fail_share`` fail: a bureau
    with another base rate (the ranking signal of the city's own outcomes is kept by sorting)."""
    src = tmp_path / "src"
    shutil.copytree(small_city, src, ignore=shutil.ignore_patterns("_truth"))
    insp = pl.read_csv(src / "inspections.csv", infer_schema=False)
    severity = {"fail": 2, "conditional": 1, "pass": 0}
    rng = np.random.default_rng(9)
    # Keep who failed more often: rank by the city's own outcome plus noise, fail the top share.
    own = insp["outcome"].replace_strict(severity, default=0).cast(pl.Float64).to_numpy()
    key = own + rng.random(insp.height)
    cut = np.quantile(key, 1 - fail_share)
    outcome = np.where(key >= cut, "fail", "pass")
    insp = insp.with_columns(pl.Series("outcome", outcome))
    for column in ("findings_critical", "findings_serious"):
        if column in insp.columns:
            insp = insp.with_columns(pl.lit("0").alias(column))
    insp.write_csv(src / "inspections.csv")
    lake = tmp_path / "lake"
    ingest(src, lake)
    return lake


@pytest.mark.parametrize("fail_share", [0.03, 0.6])
def test_training_on_a_low_or_high_base_rate_bureau_grades_in_the_policys_shares(
    small_city: Path, tmp_path: Path, fail_share: float
) -> None:
    lake = _recoded_lake(small_city, tmp_path, fail_share)
    cfg = TrainConfig(max_rounds=30, early_stopping_rounds=10, min_data_in_leaf=50, compare_selection=False,
                      compare_targets=False, baselines=False, select=False)
    policy = load_policy().grade_shares
    assert policy is not None
    result = train_model(load_tables(lake), date(2026, 1, 1), config=cfg, grade_shares=policy)
    dist = dict(zip(result.grade_distribution["grade"], result.grade_distribution["share"], strict=True))
    for grade in "ABCD":
        assert dist[grade] > 0.02, dist  # four meaningful grades at either base rate
        assert dist[grade] == pytest.approx(policy[grade], abs=0.12), dist
    assert max(dist.values()) <= 0.6
