"""The plans' recorded inclusion probabilities in training (issue 11): a random visit of an
enterprise a stored plan drew with probability π weighs 1 / π, scaled so the month keeps its count;
every other visit weighs 1; ``train`` reads the draws from the store and the weights reach the fit."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.artifact import CreditModel
from models.booster import fit_booster
from models.labels import design_weights
from models.train import TrainConfig, train_model
from riskengine.core.config import Settings
from riskengine.core.store import Store
from riskengine.lake.layout import load_tables
from riskengine.workflows.training import recorded_inclusion

MARCH, APRIL = date(2025, 3, 1), date(2025, 4, 1)


def _visits(rows: list[tuple[str, date, bool]]) -> pl.DataFrame:
    return pl.DataFrame({"enterprise_id": [r[0] for r in rows], "day": [r[1] for r in rows],
                         "observed_random": [r[2] for r in rows]})


def test_drawn_random_visits_weigh_one_over_pi_scaled_to_their_months_count() -> None:
    visits = _visits([
        ("a", date(2025, 3, 5), True),    # drawn with π = 0.5  -> raw 2
        ("b", date(2025, 3, 9), True),    # drawn with π = 0.25 -> raw 4
        ("c", date(2025, 3, 9), False),   # a complaint visit: 1
        ("d", date(2025, 3, 20), True),   # random, but in no stored draw: 1
        ("a", date(2025, 4, 2), True),    # April: drawn with π = 0.1, alone in its month -> 1
        ("b", date(2025, 4, 2), True),    # drawn in March only: 1
    ])
    inclusion = pl.DataFrame({"enterprise_id": ["a", "b", "a"], "month": [MARCH, MARCH, APRIL],
                              "inclusion_probability": [0.5, 0.25, 0.1]})
    weights = design_weights(visits, inclusion).to_list()
    assert weights == pytest.approx([2 / 3, 4 / 3, 1.0, 1.0, 1.0, 1.0])
    assert design_weights(visits, None).to_list() == [1.0] * 6


def test_the_store_s_random_draws_before_d_are_read_for_training(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert recorded_inclusion(settings, date(2025, 6, 1)) is None  # no store yet
    store = Store(settings.store_file)
    for period, prob in (("2025-03", 0.2), ("2025-06", 0.5)):
        plan = pl.DataFrame({"enterprise_id": ["e1", "e2", "e3"],
                             "stratum": ["random", "random", "mandatory"],
                             "inclusion_probability": [prob, prob, 1.0]})
        store.save_plan(plan, {"period": period, "as_of": f"{period}-01"})
    got = recorded_inclusion(settings, date(2025, 6, 1))
    assert got is not None
    assert got.sort("enterprise_id").to_dicts() == [
        {"enterprise_id": "e1", "month": MARCH, "inclusion_probability": 0.2},
        {"enterprise_id": "e2", "month": MARCH, "inclusion_probability": 0.2},
    ]  # the mandatory row and June's plan (not before D) are left out


def test_training_computes_design_weights_for_the_inspection_targets_drawn_visits(small_lake: Path) -> None:
    tables = load_tables(small_lake)
    day = date(2026, 1, 1)
    fast = TrainConfig(target="inspection", inspection_snapshots=24, max_rounds=10, min_data_in_leaf=10,
                       compare_selection=False, compare_targets=False, baselines=False, select=False)
    random = (tables["inspections"].filter(pl.col("kind") == "random")
              .select("enterprise_id", pl.col("inspected_on").dt.truncate("1mo").alias("month"))
              .unique().collect().sort("enterprise_id", "month"))
    probability = np.random.default_rng(3).choice([0.02, 0.5], random.height)
    inclusion = random.with_columns(pl.Series("inclusion_probability", probability))
    assert train_model(tables, day, config=fast).info["design_weighted_visits"] == 0
    assert train_model(tables, day, config=fast, inclusion=inclusion).info["design_weighted_visits"] > 50


def test_the_booster_fits_the_design_weighted_rate() -> None:
    # One constant feature: no split is possible, so the booster's margin is the log-odds of the
    # (weighted) share of adverse rows it was fitted on.
    frame = pl.DataFrame({"enterprise_id": [f"e{i}" for i in range(400)], "x": [1.0] * 400,
                          "label": [True, False, False, False] * 100,
                          "design_weight": [3.0, 1.0, 1.0, 1.0] * 100})
    proto = CreditModel(None, ["x"])  # type: ignore[arg-type]
    cfg = TrainConfig(validation="months", max_rounds=5, min_data_in_leaf=1)
    margins = {}
    for name, rows in (("weighted", frame), ("plain", frame.drop("design_weight"))):
        booster, _ = fit_booster(cfg, "none", {"train": rows, "valid": rows}, proto, [0])
        margins[name] = float(booster.predict(proto.encode(rows.head(1)), raw_score=True)[0])
    assert margins["plain"] == pytest.approx(np.log(0.25 / 0.75), abs=0.02)
    assert margins["weighted"] == pytest.approx(0.0, abs=0.02)  # 3 / (3 + 1 + 1 + 1) = 0.5
