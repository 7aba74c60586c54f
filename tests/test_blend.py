"""The blend target (models.blend): two LightGBM models written as one booster whose margin and
TreeSHAP contributions are exactly their weighted sum, the weight set by the share looked at (or
fixed, or chosen on held-out visits); and bagging, which merges one target's boosters the same way."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.artifact import CreditModel
from models.blend import WEIGHT_BOUNDS, WEIGHT_GRID, choose_weight, looked_weight, merge_boosters
from models.train import TrainConfig, TrainResult, train_model
from riskengine.core.errors import ModelError
from riskengine.lake.layout import load_tables

D = date(2026, 1, 1)


def _boosters() -> tuple[np.ndarray, object, object]:
    import lightgbm as lgb

    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 4))
    x[:, 3] = rng.integers(0, 5, 3000)
    y = (x[:, 0] + x[:, 1] + (x[:, 3] == 2) + rng.normal(size=3000) > 0).astype(float)
    params = {"objective": "binary", "verbose": -1, "seed": 1, "deterministic": True}
    a = lgb.train(params | {"num_leaves": 7, "monotone_constraints": [1, 0, 0]},
                  lgb.Dataset(x[:, [0, 1, 2]], y, feature_name=["a", "b", "c"]), num_boost_round=30)
    b = lgb.train(params | {"num_leaves": 5},
                  lgb.Dataset(x[:, [3, 1]], y, feature_name=["d", "b"], categorical_feature=["d"]),
                  num_boost_round=20)
    return x, a, b


def test_the_merged_booster_is_the_weighted_sum_of_its_parts_in_margin_and_contributions() -> None:
    import lightgbm as lgb

    x, a, b = _boosters()
    names = ["d", "b", "a", "c"]
    merged = merge_boosters([(a, ["a", "b", "c"], 0.7), (b, ["d", "b"], 0.3)], names)
    xa, xb, xm = x[:, [0, 1, 2]], x[:, [3, 1]], x[:, [3, 1, 0, 2]]
    expected = 0.7 * a.predict(xa, raw_score=True) + 0.3 * b.predict(xb, raw_score=True)
    assert np.allclose(merged.predict(xm, raw_score=True), expected, atol=1e-12)
    assert merged.feature_name() == names
    assert merged.num_trees() == a.num_trees() + b.num_trees()
    contrib, ca, cb = (m.predict(z, pred_contrib=True) for m, z in ((merged, xm), (a, xa), (b, xb)))
    assert np.allclose(contrib[:, 2], 0.7 * ca[:, 0], atol=1e-12)  # a: only the first model
    assert np.allclose(contrib[:, 1], 0.7 * ca[:, 1] + 0.3 * cb[:, 1], atol=1e-12)  # b: both
    assert np.allclose(contrib[:, 0], 0.3 * cb[:, 0], atol=1e-12)  # d (categorical): only the second
    assert np.allclose(contrib[:, 3], 0.7 * ca[:, 2], atol=1e-12)  # c: the first model's noise column
    # It saves and loads as any booster does.
    again = lgb.Booster(model_str=merged.model_to_string())
    assert np.array_equal(again.predict(xm, raw_score=True), merged.predict(xm, raw_score=True))


def test_a_part_with_a_column_outside_the_blend_is_refused() -> None:
    _, a, _ = _boosters()
    with pytest.raises(ModelError, match=r"\['c'\]"):
        merge_boosters([(a, ["a", "b", "c"], 1.0)], ["a", "b"])


def test_the_weight_is_the_one_whose_blend_ranks_the_visits_best() -> None:
    rng = np.random.default_rng(3)
    signal = rng.normal(size=4000)
    y = (signal + rng.normal(size=4000) > 1).astype(int)
    good, noise = signal + 0.3 * rng.normal(size=4000), rng.normal(size=4000)
    weight, tried = choose_weight(y, good, noise)  # the horizon part carries the signal
    assert weight == max(WEIGHT_GRID) == 0.8 and tried["0.8"] == max(tried.values())
    weight, _ = choose_weight(y, noise, good)
    assert weight == min(WEIGHT_GRID) == 0.2
    assert [float(w) for w in tried] == list(WEIGHT_GRID)
    # Equal parts rank alike at every weight: the tie goes to the even blend.
    assert choose_weight(y, good, good)[0] == 0.5


@pytest.fixture(scope="module")
def blended(small_lake: Path) -> TrainResult:
    config = TrainConfig(target="blend", max_rounds=60, early_stopping_rounds=10, min_data_in_leaf=50,
                         baselines=False)
    return train_model(load_tables(small_lake), D, config=config)


def test_training_the_blend_ships_one_model_equal_to_its_weighted_components(blended: TrainResult) -> None:
    info, model = blended.info["model"], blended.model
    assert model.metadata["target"] == "blend"
    assert set(blended.target_models) == {"horizon", "inspection"}
    w = info["weight_horizon"]
    # By default the share of the horizon model's enterprise-months looked at within the horizon.
    assert info["weight_rule"].startswith("looked: ") and WEIGHT_BOUNDS[0] <= w <= WEIGHT_BOUNDS[1]
    assert 0 < info["observed_share"] < 1 and w == looked_weight(info["observed_share"])
    assert set(info["weight_auc"]) == {f"{g:.1f}" for g in WEIGHT_GRID}  # every weight's AUC reported
    rows = blended.test_frame.head(400)
    parts = []
    for name, weight in (("horizon", w), ("inspection", 1 - w)):
        part = blended.target_models[name]
        a = part.calibrator.slope
        parts.append(weight * (a * part.predict_raw(rows) + part.calibrator.intercept))
    # The shipped margin is the blend of the components' log-odds up to the final calibration's
    # constant: the same ranking, and a slope-and-shift of the same numbers.
    margin = model.predict_raw(rows)
    blend = parts[0] + parts[1]
    shift = (blend - margin)
    assert np.allclose(shift, shift[0], atol=1e-9)
    # Reasons read the merged booster's TreeSHAP, which adds up to its margin.
    contrib = model.contributions(rows)
    assert np.allclose(contrib.sum(axis=1), margin, atol=1e-9)
    # Calibrated on visits: the probability is of what a visit finds, not of a year's events.
    assert model.calibrator.method == "platt"
    scorers = set(blended.metrics["scorer"])
    assert {"lightgbm", "lightgbm_horizon", "lightgbm_inspection", "lightgbm_mean_logodds"} <= scorers


def test_the_saved_blend_scores_as_trained(blended: TrainResult, tmp_path: Path) -> None:
    rows = blended.test_frame.head(200)
    again = CreditModel.load(blended.model.save(tmp_path / "m"))
    assert np.array_equal(again.predict_proba(rows), blended.model.predict_proba(rows))


def test_a_chosen_weight_comes_from_the_grid_or_is_even_without_evidence(small_lake: Path) -> None:
    config = TrainConfig(target="blend", max_rounds=30, early_stopping_rounds=10, min_data_in_leaf=50,
                         baselines=False, compare_selection=False, select=False, blend_weight="choose")
    info = train_model(load_tables(small_lake), D, config=config).info["model"]
    judged_enough = info["weight_rows"] >= 200
    if judged_enough:
        assert info["weight_rule"].startswith("chosen")
        assert info["weight_auc"][f"{info['weight_horizon']:.1f}"] == max(
            a for a in info["weight_auc"].values() if np.isfinite(a))
    else:  # the small city's calibration months hold too few first visits to choose on
        assert info["weight_horizon"] == 0.5 and "too few" in info["weight_rule"]


def test_a_blend_whose_inspection_part_cannot_be_fitted_is_the_horizon_model_and_says_so(
        small_lake: Path) -> None:
    tables = dict(load_tables(small_lake))
    # Every inspection and test clean: the inspection target has one class of outcome.
    tables["inspections"] = tables["inspections"].with_columns(
        pl.lit("pass").alias("outcome"), pl.lit(0).cast(pl.Int64).alias("findings_critical"))
    tables.pop("sampling_tests", None)
    config = TrainConfig(target="blend", max_rounds=40, early_stopping_rounds=10, min_data_in_leaf=50,
                         baselines=False, compare_selection=False)
    result = train_model(tables, D, config=config)
    assert result.model.metadata["target"] == "horizon"
    assert "horizon" in result.info["skipped"]["blend"]
    assert "lightgbm_inspection" in result.info["skipped"]


def test_the_model_card_names_the_blend_and_its_weight(blended: TrainResult) -> None:
    from models.card import model_card

    card = model_card(blended)
    weight = blended.info["model"]["weight_horizon"]
    assert "`blend`: the chance that an inspection now" in card
    assert f"Weight of the horizon model {weight}" in card
    bags, seed = blended.config.bags, blended.config.seed
    assert f"the mean of {bags} booster(s) fitted with seeds {seed} .. {seed + bags - 1}" in card
    assert "The horizon model fit months" in card and "the inspection model fit months" in card
    assert "`lightgbm_horizon`" in card and "`lightgbm_inspection`" in card


def test_the_same_data_and_seed_give_the_same_blend(blended: TrainResult, small_lake: Path) -> None:
    config = TrainConfig(target="blend", max_rounds=60, early_stopping_rounds=10, min_data_in_leaf=50,
                         baselines=False)
    again = train_model(load_tables(small_lake), D, config=config)
    rows = blended.test_frame.head(300)
    assert again.info["model"]["weight_auc"] == blended.info["model"]["weight_auc"]
    assert np.array_equal(again.model.predict_proba(rows), blended.model.predict_proba(rows))


@pytest.mark.parametrize(("share", "weight"), [
    (0.75, 0.7),  # Boston-like: most restaurants inspected within a year; rounded down to a tenth
    (0.7, 0.7), (0.3, 0.3), (0.6999, 0.6),
    (0.14, 0.2),  # the synthetic city: few looked at; each model keeps at least a fifth
    (0.0, 0.2), (0.97, 0.8), (1.0, 0.8),
    (float("nan"), 0.5),  # unknown: the even blend
])
def test_the_looked_weight_is_the_share_looked_at_rounded_down_to_a_tenth_within_bounds(
        share: float, weight: float) -> None:
    assert looked_weight(share) == weight


def test_the_default_weight_follows_the_lakes_share_looked_at(small_lake: Path) -> None:
    """Fewer visits in the lake (most inspections dropped): a smaller share looked at, a smaller weight
    for the horizon model, and the rule says the share."""
    tables = dict(load_tables(small_lake))
    config = TrainConfig(target="blend", max_rounds=30, early_stopping_rounds=10, min_data_in_leaf=50,
                         baselines=False, compare_selection=False, select=False, compare_targets=False)
    full = train_model(tables, D, config=config).info["model"]
    sparse = dict(tables)
    sparse["inspections"] = tables["inspections"].filter(pl.col("inspection_id").hash(7) % 4 == 0)
    sparse.pop("sampling_tests", None)
    thin = train_model(sparse, D, config=config).info["model"]
    for info in (full, thin):
        assert info["weight_horizon"] == looked_weight(info["observed_share"])
        assert f"looked: {info['observed_share']:.1%}" in info["weight_rule"]
    assert thin["observed_share"] < full["observed_share"]
    assert thin["weight_horizon"] <= full["weight_horizon"]


def test_bagging_merges_one_booster_per_seed_into_their_mean(small_lake: Path) -> None:
    tables = load_tables(small_lake)
    base = dict(target="horizon", max_rounds=40, early_stopping_rounds=10, min_data_in_leaf=50,
                baselines=False, compare_selection=False, select=False, compare_targets=False)
    bagged = train_model(tables, D, config=TrainConfig(bags=3, **base))
    single = train_model(tables, D, config=TrainConfig(bags=1, **base))
    info = bagged.info["model"]
    assert info["bags"] == 3 and len(info["bag_iterations"]) == 3
    assert bagged.model.booster.num_trees() == sum(info["bag_iterations"])
    # The first bag is the single model (same seed); the mean of three differs from it.
    assert single.info["model"]["best_iteration"] == info["bag_iterations"][0]
    rows = bagged.test_frame.head(300)
    assert not np.allclose(bagged.model.predict_raw(rows), single.model.predict_raw(rows))
    assert "bags" not in single.info["model"]


def test_train_refuses_a_number_of_bags_out_of_range() -> None:
    with pytest.raises(Exception, match="bags"):
        TrainConfig(bags=0).validate()
