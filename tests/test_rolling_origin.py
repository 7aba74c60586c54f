"""Rolling-origin validation inside train (issue 11, "chosen by evidence"): the folds never let an
evaluation month train, the feature sets keep what they say, and the candidate chosen is the one
whose features hold up on later months, not the one that fits the earlier ones best."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from models.artifact import CreditModel
from models.rolling_origin import FEATURE_SETS, TREE_SIZES, choose_candidates, feature_set, rolling_folds
from models.train_config import TrainConfig
from riskengine.core.timerule import add_months

MONTHS = [add_months(date(2023, 1, 1), k) for k in range(12)]
EXPOSURE = "inspections__count_365d"      # how often someone looked
RATE = "inspections__adverse_share"       # what the inspections found
PROFILE = "profile__age_days"             # every set keeps the other families


def test_folds_train_only_on_months_before_a_gap_before_their_evaluation() -> None:
    folds = rolling_folds(MONTHS)
    assert len(folds) == 2
    for train, evaluate in folds:
        assert len(evaluate) == 2 and evaluate == sorted(evaluate)
        assert add_months(max(train), 2) == min(evaluate)  # one month left out between
    assert folds[1][1][-1] == MONTHS[-1]  # the last origin evaluates on the latest months


def test_feature_sets_keep_what_they_say() -> None:
    names = [EXPOSURE, RATE, PROFILE, "inspections__days_since_last", "severity__index"]
    assert feature_set(names, "all") == names
    assert feature_set(names, "exposure_free") == [RATE, PROFILE]
    assert feature_set(names, "rates") == [RATE, PROFILE]


def _data(seed: int = 4) -> pl.DataFrame:
    """Per month 800 rows: the rate predicts the label throughout; the exposure count predicts it in
    the first eight months and the opposite afterwards (a supervisor who changed whom it visits)."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, month in enumerate(MONTHS):
        n = 800
        rate = rng.random(n)
        label = rng.random(n) < 0.15 + 0.5 * rate
        drift = 1.0 if k < 8 else -1.0
        exposure = np.clip(np.round(2 + drift * 3 * (label - 0.5) + rng.normal(0, 0.7, n)), 0, None)
        parts.append(pl.DataFrame({
            "enterprise_id": [f"e{i}" for i in range(n)], "as_of": [month] * n,
            EXPOSURE: exposure, RATE: rate, PROFILE: rng.random(n) * 3000,
            "label": label, "observed_random": rng.random(n) < 0.5,
        }))
    return pl.concat(parts)


def test_the_candidate_that_holds_up_out_of_time_is_chosen_and_every_one_is_logged() -> None:
    names = [EXPOSURE, RATE, PROFILE]

    def proto_for(target: str, which: str) -> tuple[CreditModel, list[int]]:
        cols = feature_set(names, which)
        return CreditModel(None, cols), [0] * len(cols)  # type: ignore[arg-type]

    chosen, log = choose_candidates(["horizon"], TrainConfig(), {"horizon": MONTHS}, {"horizon": _data()},
                                    proto_for)
    assert len(log) == len(FEATURE_SETS) * len(TREE_SIZES)
    assert all(len(entry["fold_auc"]) == 2 for entry in log)
    best = max(log, key=lambda entry: entry["mean_auc"])
    assert chosen["horizon"].label() == best["candidate"]
    # The exposure count flips after month 8: the sets without it win on the later months.
    assert chosen["horizon"].features in ("exposure_free", "rates")
    by_set: dict[str, float] = {}
    for entry in log:
        which = entry["candidate"].split("/")[1]
        by_set[which] = max(by_set.get(which, 0.0), entry["mean_auc"])
    assert by_set["all"] < by_set["exposure_free"]


def test_without_selection_the_default_candidate_is_used() -> None:
    def proto_for(target: str, which: str) -> tuple[CreditModel, list[int]]:
        return CreditModel(None, [RATE]), [0]  # type: ignore[arg-type]

    chosen, log = choose_candidates(["horizon"], TrainConfig(select=False), {"horizon": MONTHS},
                                    {"horizon": _data()}, proto_for)
    assert log == [] and chosen["horizon"].features == "all" and chosen["horizon"].tree == TREE_SIZES[0]
