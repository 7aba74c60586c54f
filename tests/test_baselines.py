"""The baselines follow scikit-learn's estimator contract and are used the same way (models/baselines.py)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from models.baselines import LogisticScorecard, PointsScorecard, ShareOfPast, snapshot_rows
from riskengine.core.errors import ModelError, UsageError

AS_OF = date(2025, 1, 1)


def tables() -> dict[str, pl.LazyFrame]:
    penalties = pl.DataFrame({"enterprise_id": ["E1", "E2"],
                              "decided_on": [date(2024, 6, 1), date(2020, 1, 1)],
                              "recorded_on": [None, None], "severity": ["moderate", "serious"],
                              "dishonest_list": [False, False]},
                             schema_overrides={"recorded_on": pl.Date})
    inspections = pl.DataFrame({"enterprise_id": ["E1", "E1", "E2"],
                                "inspected_on": [date(2024, 3, 1), date(2024, 5, 1), date(2025, 1, 1)],
                                "recorded_on": [None, None, None], "outcome": ["fail", "pass", "fail"],
                                "findings_critical": [0, 0, 0]},
                               schema_overrides={"recorded_on": pl.Date})
    return {"penalties": penalties.lazy(), "inspections": inspections.lazy()}


def rows() -> pl.DataFrame:
    return snapshot_rows(["E2", "E1", "E3"], [AS_OF] * 3)


@pytest.mark.parametrize("estimator", [PointsScorecard(), ShareOfPast(), LogisticScorecard()])
def test_an_unfitted_baseline_refuses_to_score(estimator) -> None:
    with pytest.raises(ModelError, match="is not fitted; call fit"):
        estimator.decision_function(rows())


def test_fit_keeps_init_parameters_and_learns_only_attributes_ending_in_underscore() -> None:
    card = PointsScorecard(lookback_days=200)
    before = dict(vars(card))
    assert card.fit(rows(), None, tables=tables()) is card
    learned = {k for k in vars(card) if k not in before}
    assert learned and all(k.endswith("_") for k in learned)
    assert {k: vars(card)[k] for k in before} == before


def test_points_and_share_of_past_score_the_rows_in_order_from_what_was_known_before_as_of() -> None:
    points = PointsScorecard().fit(rows(), None, tables=tables()).decision_function(rows())
    # E2: its serious penalty is over 3 years old, its failure on as_of itself not yet known; E1: a
    # moderate penalty (100) and a failed inspection (80) within the year; E3: nothing.
    assert points.tolist() == [0.0, 180.0, 0.0]
    share = ShareOfPast().fit(rows(), None, tables=tables()).decision_function(rows())
    assert share.tolist() == [0.5, 0.5, 0.5]  # E2 and E3 never inspected before: the population's share


def test_bad_points_are_refused_when_fitting() -> None:
    with pytest.raises(UsageError, match="points keys must be among"):
        PointsScorecard(points={"parking": 5.0}).fit(tables=tables())


def test_the_logistic_scorecard_ranks_by_its_feature() -> None:
    rng = np.random.default_rng(0)
    x = rng.random(400)
    y = (rng.random(400) < x).astype(int)
    frame = pl.DataFrame({"f": x, "label": y})
    card = LogisticScorecard(random_state=0).fit(frame, y, feature_names=["f"])
    risk = card.decision_function(pl.DataFrame({"f": [0.05, 0.95]}))
    assert np.array_equal(risk, card.predict_proba(pl.DataFrame({"f": [0.05, 0.95]})))
    assert risk[0] < risk[1]
