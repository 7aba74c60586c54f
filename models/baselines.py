"""Baselines the model must beat (issue 4).

- ``PointsScorecard``: an additive points scheme like the provincial credit-risk classifications
  (penalties, failures, complaints, recalls, licence actions → 0–1000 points, higher is riskier),
  counted directly from the event tables as of each snapshot.
- ``LogisticScorecard``: a logistic regression on optimally binned (WoE) features with optbinning,
  the classic bank scorecard.
- ``ShareOfPast``: the share of an enterprise's past inspections that were adverse.

They follow scikit-learn's estimator contract and are used the same way: ``__init__`` stores
parameters, ``fit(X, y, **fit_params)`` on the training rows validates them, learns attributes ending
in ``_`` and returns ``self``; ``decision_function(X)`` gives each row of ``X`` (``enterprise_id``,
``as_of`` and the features) a risk, higher is riskier, and refuses an estimator not fitted
(``check_is_fitted``). The two counting from the event tables take them as a fit parameter and keep
them (``tables_``), as a nearest-neighbours estimator keeps its training data.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from riskengine.core.contract import adverse_inspection
from riskengine.core.errors import ModelError, UsageError
from riskengine.core.timerule import known_at

# Points per event in the look-back window, after the provincial schemes' deduction tables (e.g.
# penalties weigh by severity, a place on the dishonesty list outweighs everything else).
DEFAULT_POINTS: dict[str, float] = {
    "penalty_minor": 30.0,
    "penalty_moderate": 100.0,
    "penalty_serious": 250.0,
    "dishonest_list": 400.0,
    "inspection_fail": 80.0,
    "inspection_conditional": 20.0,
    "sampling_fail": 100.0,
    "recall": 120.0,
    "complaint": 10.0,
    "complaint_substantiated": 30.0,
    "licence_suspended": 150.0,
    "licence_revoked": 300.0,
}


class _Estimator:
    """What ``check_is_fitted`` asks of an estimator: scikit-learn's default tags (those of its
    ``BaseEstimator``), without importing scikit-learn when the command line starts."""

    def __sklearn_tags__(self) -> Any:
        from sklearn.base import BaseEstimator  # noqa: PLC0415 - heavy

        return BaseEstimator.__sklearn_tags__(self)  # type: ignore[arg-type]


def _check_fitted(estimator: _Estimator) -> None:
    """scikit-learn's ``check_is_fitted``, as this project's error."""
    from sklearn.exceptions import NotFittedError  # noqa: PLC0415 - heavy
    from sklearn.utils.validation import check_is_fitted  # noqa: PLC0415 - heavy

    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise ModelError(f"{type(estimator).__name__} is not fitted; call fit() first.") from None


class PointsScorecard(_Estimator):
    """Additive 0–1000 points from event counts in the last ``lookback_days`` (serious penalties and
    the dishonesty list: ``long_lookback_days``, after SAMR Order 107's three-year influence period)."""

    def __init__(self, points: Mapping[str, float] | None = None, lookback_days: int = 365,
                 long_lookback_days: int = 1095, cap: float = 1000.0) -> None:
        self.points = points
        self.lookback_days = lookback_days
        self.long_lookback_days = long_lookback_days
        self.cap = cap

    def fit(self, X: pl.DataFrame | None = None, y: object = None, *,
            tables: Mapping[str, pl.LazyFrame]) -> PointsScorecard:
        """Check the points and windows and keep the event tables; ``X`` and ``y`` are not used (the
        points are set by policy, not learned)."""
        points = dict(DEFAULT_POINTS if self.points is None else self.points)
        unknown = set(points) - set(DEFAULT_POINTS)
        if unknown:
            raise UsageError(f"points keys must be among {sorted(DEFAULT_POINTS)}; got {sorted(unknown)}.")
        if any(v < 0 for v in points.values()):
            raise UsageError("points must be non-negative numbers.")
        if self.lookback_days < 1 or self.long_lookback_days < 1:
            raise UsageError("look-back windows must be positive integers of days.")
        self.points_ = {**{k: 0.0 for k in DEFAULT_POINTS}, **points}
        self.tables_ = tables
        return self

    def decision_function(self, X: pl.DataFrame) -> np.ndarray:
        """Points for each (``enterprise_id``, ``as_of``) row of ``X``, in row order."""
        _check_fitted(self)
        rows, tables = X, self.tables_
        keys = rows.select("enterprise_id", pl.col("as_of").cast(pl.Date)).unique().lazy()
        pts = self.points_
        short, long = self.lookback_days, self.long_lookback_days

        def window(table: str, date_col: str, days: int, points: pl.Expr) -> pl.LazyFrame | None:
            if table not in tables:
                return None
            frame = tables[table].join(keys, on="enterprise_id", how="inner")
            frame = frame.filter(known_at(date_col, pl.col("as_of"))
                                 & (pl.col(date_col) >= pl.col("as_of") - pl.duration(days=days)))
            return frame.select("enterprise_id", "as_of", points.cast(pl.Float64).alias("points"))

        sev = pl.col("severity")
        parts = [
            window("penalties", "decided_on", short,
                   pl.when(sev == "minor").then(pts["penalty_minor"])
                   .when(sev == "moderate").then(pts["penalty_moderate"]).otherwise(0.0)),
            window("penalties", "decided_on", long,
                   pl.when(sev == "serious").then(pts["penalty_serious"]).otherwise(0.0)
                   + pl.when(pl.col("dishonest_list").fill_null(False))
                   .then(pts["dishonest_list"]).otherwise(0.0)),
            window("inspections", "inspected_on", short,
                   pl.when(pl.col("outcome") == "fail").then(pts["inspection_fail"])
                   .when(pl.col("outcome") == "conditional").then(pts["inspection_conditional"])
                   .otherwise(0.0)),
            window("sampling_tests", "sampled_on", short,
                   pl.when(pl.col("result") == "fail").then(pts["sampling_fail"]).otherwise(0.0)),
            window("recalls", "announced_on", short, pl.lit(pts["recall"])),
            window("complaints", "received_on", short,
                   pl.when(pl.col("substantiated").fill_null(False)).then(pts["complaint_substantiated"])
                   .otherwise(pts["complaint"])),
            window("licenses", "status_changed_on", long,
                   pl.when(pl.col("status") == "revoked").then(pts["licence_revoked"])
                   .when(pl.col("status") == "suspended").then(pts["licence_suspended"]).otherwise(0.0)),
        ]
        frames = [p for p in parts if p is not None]
        totals = (pl.concat(frames).group_by("enterprise_id", "as_of").agg(pl.col("points").sum())
                  if frames else pl.LazyFrame(schema={"enterprise_id": pl.String, "as_of": pl.Date,
                                                      "points": pl.Float64}))
        out = (rows.select("enterprise_id", pl.col("as_of").cast(pl.Date)).lazy()
               .join(totals, on=["enterprise_id", "as_of"], how="left", maintain_order="left")
               .select(pl.col("points").fill_null(0.0).clip(0.0, self.cap)).collect())
        return out["points"].to_numpy().astype(np.float64)


class ShareOfPast(_Estimator):
    """The share of an enterprise's past inspections that were adverse (failed or a critical finding),
    over its whole visible history; never inspected: the population's share. The simplest history
    ranking, and on Boston's real inspections a hard one to beat (AUC 0.662, README real data)."""

    def fit(self, X: pl.DataFrame | None = None, y: object = None, *,
            tables: Mapping[str, pl.LazyFrame]) -> ShareOfPast:
        """Keep the event tables; nothing is learned (``X`` and ``y`` are not used)."""
        self.tables_ = tables
        return self

    def decision_function(self, X: pl.DataFrame) -> np.ndarray:
        """The share for each (``enterprise_id``, ``as_of``) row of ``X``, in row order."""
        _check_fitted(self)
        rows, tables = X, self.tables_
        keys = rows.select("enterprise_id", pl.col("as_of").cast(pl.Date))
        if "inspections" not in tables:
            return np.zeros(rows.height)
        insp = tables["inspections"]
        cols = insp.collect_schema().names()
        seen = (insp.select("enterprise_id", "inspected_on", "recorded_on",
                            adverse_inspection(cols).cast(pl.Float64).alias("_adv"))
                .join(keys.unique().lazy(), on="enterprise_id", how="inner")
                .filter(known_at("inspected_on", pl.col("as_of"))))
        per = seen.group_by("enterprise_id", "as_of").agg(pl.col("_adv").mean().alias("_share"))
        overall = seen.group_by("as_of").agg(pl.col("_adv").mean().alias("_all"))
        out = (keys.lazy().join(per, on=["enterprise_id", "as_of"], how="left", maintain_order="left")
               .join(overall, on="as_of", how="left", maintain_order="left")
               .select(pl.coalesce("_share", "_all", pl.lit(0.0))).collect())
        return out.to_series().to_numpy().astype(np.float64)


class LogisticScorecard(_Estimator):
    """Logistic regression on optbinning's optimal WoE bins (the classic scorecard).

    ``max_rows`` caps the rows used to fit (a random sample with ``random_state``): binning is the
    slow part and a scorecard gains nothing from millions of rows.
    """

    def __init__(self, max_n_bins: int = 6, max_rows: int = 200_000, random_state: int = 0) -> None:
        self.max_n_bins = max_n_bins
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X: pl.DataFrame, y: Sequence[int] | np.ndarray, *,
            feature_names: Sequence[str]) -> LogisticScorecard:
        """Bin and fit on the numeric ``feature_names`` of ``X`` against ``y`` (1 = adverse)."""
        from optbinning import BinningProcess, Scorecard  # noqa: PLC0415 - heavy
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - heavy
        if not isinstance(self.max_n_bins, int) or self.max_n_bins < 2:
            raise UsageError(f"max_n_bins must be an integer >= 2; got {self.max_n_bins!r}.")
        features = X
        names = [n for n in feature_names if features.schema[n].is_numeric()]
        if not names:
            raise ModelError("the logistic scorecard needs at least one numeric feature.")
        y_arr = np.asarray(y, dtype=np.int64)
        if len(np.unique(y_arr)) < 2:
            raise ModelError("the logistic scorecard needs both adverse and clean rows to fit.")
        rng = np.random.default_rng(self.random_state)
        idx = np.arange(features.height)
        if features.height > self.max_rows:
            idx = np.sort(rng.choice(features.height, self.max_rows, replace=False))
        frame = features.select(names)[idx].to_pandas()  # optbinning works on pandas (edge conversion)
        process = BinningProcess(variable_names=names, max_n_bins=self.max_n_bins)
        card = Scorecard(binning_process=process,
                         estimator=LogisticRegression(max_iter=1000, random_state=self.random_state))
        with warnings.catch_warnings():  # optbinning's pandas deprecation noise, not ours to fix
            warnings.simplefilter("ignore")
            card.fit(frame, y_arr[idx])
        self.feature_names_ = names
        self.scorecard_ = card
        return self

    def decision_function(self, X: pl.DataFrame) -> np.ndarray:
        """The probability of an adverse outcome for each row of ``X`` (the scorecard's risk)."""
        return self.predict_proba(X)

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray:
        """The probability of an adverse outcome for each row of ``X``, in row order."""
        _check_fitted(self)
        frame = X.select(self.feature_names_).to_pandas()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.scorecard_.predict_proba(frame)[:, 1], dtype=np.float64)


def snapshot_rows(enterprise_ids: Sequence[str], as_of: Sequence[date]) -> pl.DataFrame:
    """A small helper for callers and tests: rows of (enterprise_id, as_of)."""
    return pl.DataFrame({"enterprise_id": list(enterprise_ids), "as_of": list(as_of)},
                        schema={"enterprise_id": pl.String, "as_of": pl.Date})
