"""Training: point-in-time features + labels → a calibrated, monotone LightGBM ``CreditModel``,
evaluated out of time against two baselines in the same run (issue 4).

Time layout for a decision date D (CONTRACT section 2, nothing at or after D is used)::
    fit snapshots (train | valid | calib)   purge gap = horizon    test snapshots (latest)
    ... t_1 ... t_k ..................... t_k + h <= s_1 ... s_m,   s_m + h <= D

The test snapshots are the latest months whose label windows end by D. The fit snapshots end a full
horizon before the first test snapshot, so no event that labels a test row also labels a training
row (an overlap would let the model learn the test outcomes). Inside the fit snapshots, the earliest
train the booster, the next ones stop it early (validation), the latest calibrate it.

Selection bias: outcomes exist only where someone inspected or tested. With ``selection="ipw"`` the
booster learns from observed rows (an inspection or test in the window, or an adverse outcome) weighted
by 1 / P(observed | features), so profiles that are rarely inspected count as much as they should.
The run also trains the other variant and reports both on random (双随机) inspections, the unbiased
sample, so the effect of the correction is visible.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from features import catalog, compute_features
from models.artifact import Calibrator, CreditModel
from models.baselines import LogisticScorecard, PointsScorecard
from models.evaluate import score_metrics, spearman
from models.grading import grade_from_score, score_from_probability
from models.labels import build_labels, latest_snapshot, monthly_snapshots
from riskengine.core.errors import ModelError, UsageError

if TYPE_CHECKING:
    import lightgbm as lgb

KEYS = ("enterprise_id", "as_of")
SELECTIONS = ("ipw", "none")
CALIBRATIONS = ("platt", "isotonic")
VALIDATIONS = ("enterprises", "months")


@dataclass
class TrainConfig:
    """Training parameters; defaults suit a city of a few thousand to a few hundred thousand firms."""

    horizon_days: int = 365
    snapshots: int = 12  # monthly fit snapshots (train + valid + calib)
    test_snapshots: int = 3
    seed: int = 42
    num_threads: int = 2
    learning_rate: float = 0.1
    # Small, shallow, regularised trees (tuned on two 20,000-enterprise cities, README "Model"):
    # they rank as well as or better than 31 leaves out of time, and TreeSHAP's cost (trees x
    # leaves x depth) stays small enough to explain millions of enterprises.
    num_leaves: int = 7
    max_depth: int = 3  # -1: unlimited
    min_data_in_leaf: int = 200
    feature_fraction: float = 0.7
    lambda_l2: float = 5.0
    max_rounds: int = 400
    early_stopping_rounds: int = 30
    stopping_metric: str = "binary_logloss"  # validation metric early stopping watches
    stopping_min_delta: float = 0.0  # a round must improve it by more than this to count
    # "enterprises": stop on a seeded share of enterprises held out of the train + validation
    # months. "months": stop on the validation months — the same enterprises as training with
    # overlapping label windows, so the validation loss keeps falling while the test gets worse.
    validation: str = "enterprises"
    valid_share: float = 0.2
    # "none" won on the synthetic city (random-inspection AUC and Spearman with the truth); the run
    # still trains the IPW variant beside it and reports both (compare_selection).
    selection: str = "none"
    compare_selection: bool = True
    calibration: str = "platt"
    propensity_clip: float = 0.05
    # Above this many rows, clean (non-adverse) training rows are sampled and weighted up: the
    # training benchmark's 200,000 enterprises x 8 train months would otherwise take 1.6 M rows.
    max_train_rows: int = 400_000
    baselines: bool = True

    def validate(self) -> TrainConfig:
        checks = [
            ("horizon_days", self.horizon_days >= 1, "a positive integer"),
            ("snapshots", self.snapshots >= 3, "an integer >= 3 (train, validation, calibration)"),
            ("test_snapshots", self.test_snapshots >= 1, "a positive integer"),
            ("num_threads", self.num_threads >= 1, "a positive integer"),
            ("learning_rate", 0 < self.learning_rate <= 1, "a number in (0, 1]"),
            ("max_rounds", self.max_rounds >= 1, "a positive integer"),
            ("num_leaves", self.num_leaves >= 2, "an integer >= 2"),
            ("min_data_in_leaf", self.min_data_in_leaf >= 1, "a positive integer"),
            ("feature_fraction", 0 < self.feature_fraction <= 1, "a number in (0, 1]"),
            ("lambda_l2", self.lambda_l2 >= 0, "a number >= 0"),
            ("validation", self.validation in VALIDATIONS, f"one of {', '.join(VALIDATIONS)}"),
            ("valid_share", 0 < self.valid_share < 1, "a number in (0, 1)"),
            ("selection", self.selection in SELECTIONS, f"one of {', '.join(SELECTIONS)}"),
            ("calibration", self.calibration in CALIBRATIONS, f"one of {', '.join(CALIBRATIONS)}"),
            ("propensity_clip", 0 < self.propensity_clip <= 1, "a number in (0, 1]"),
            ("max_train_rows", self.max_train_rows >= 1000, "an integer >= 1000"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise UsageError(f"{name} must be {expected}; got {getattr(self, name)!r}.")
        return self


@dataclass
class SnapshotPlan:
    """Which monthly snapshots play which role (all label windows end by ``known_before``)."""

    known_before: date
    train: list[date]
    valid: list[date]
    calib: list[date]
    test: list[date]

    @property
    def fit(self) -> list[date]:
        return [*self.train, *self.valid, *self.calib]

    def role_frame(self) -> pl.DataFrame:
        roles = [(d, r) for r in ("train", "valid", "calib", "test") for d in getattr(self, r)]
        return pl.DataFrame(
            {"as_of": [d for d, _ in roles], "role": [r for _, r in roles]},
            schema={"as_of": pl.Date, "role": pl.String},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "known_before": self.known_before.isoformat(),
            **{r: [d.isoformat() for d in getattr(self, r)] for r in ("train", "valid", "calib", "test")},
        }


def plan_snapshots(
    known_before: date, snapshots: int = 12, test_snapshots: int = 3, horizon_days: int = 365
) -> SnapshotPlan:
    """Lay out the fit and test snapshots for decision date D (see the module docstring)."""
    test = monthly_snapshots(latest_snapshot(known_before, horizon_days), test_snapshots)
    fit = monthly_snapshots(latest_snapshot(test[0], horizon_days), snapshots)
    n_hold = max(1, round(snapshots / 6))
    n_train = snapshots - 2 * n_hold
    if n_train < 1:
        n_hold, n_train = 1, snapshots - 2
    return SnapshotPlan(
        known_before, fit[:n_train], fit[n_train : n_train + n_hold], fit[n_train + n_hold :], test
    )


@dataclass
class TrainResult:
    """Everything a training run produced; ``models.registry`` logs it, the CLI prints it."""

    model: CreditModel
    metrics: pl.DataFrame  # one row per (scorer, population)
    plan: SnapshotPlan
    config: TrainConfig
    feature_schema: list[dict[str, Any]]
    feature_schema_hash: str
    test_frame: pl.DataFrame  # test-slice features + labels: the backtest data for `promote`
    grade_distribution: pl.DataFrame  # grade, n, share on the latest test snapshot
    comparison_model: CreditModel | None = None
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """Flat metrics ``<scorer>.<population>.<metric>`` (finite values only) for MLflow."""
        out: dict[str, float] = {}
        for row in self.metrics.iter_rows(named=True):
            prefix = f"{row['scorer']}.{row['population']}"
            for key, value in row.items():
                if key in ("scorer", "population") or value is None:
                    continue
                if isinstance(value, int | float) and math.isfinite(float(value)):
                    out[f"{prefix}.{key}"] = float(value)
        return out


def feature_schema(
    frame: pl.DataFrame, names: Sequence[str], catalog: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The model's input columns with their dtype and catalog flags (what the schema hash covers)."""
    return [
        {
            "name": n,
            "dtype": str(frame.schema[n]),
            "monotone": int(catalog[n].monotone),
            "categorical": bool(catalog[n].categorical),
            "nuisance": bool(catalog[n].nuisance),
        }
        for n in names
    ]


def schema_hash(schema: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:16]


def _catalog() -> tuple[Mapping[str, Any], list[str]]:
    return catalog.FEATURES, list(catalog.MODEL_FEATURES)


def _lgb_params(cfg: TrainConfig, monotone: list[int] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "max_depth": cfg.max_depth,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": cfg.lambda_l2,
        "cat_smooth": 10.0,
        "max_cat_to_onehot": 8,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": cfg.num_threads,
        "verbose": -1,
    }
    if monotone and any(monotone):
        params["monotone_constraints"] = monotone
        params["monotone_constraints_method"] = "intermediate"
    return params


def _propensity(
    cfg: TrainConfig,
    X_train: np.ndarray,
    observed: np.ndarray,
    names: list[str],
    categorical: list[str],
    X_all: list[np.ndarray],
) -> list[np.ndarray]:
    """P(observed | features) by a small LightGBM, clipped; returned for each matrix in ``X_all``."""
    import lightgbm as lgb  # noqa: PLC0415 - heavy
    if observed.all() or not observed.any():
        return [np.ones(x.shape[0]) for x in X_all]
    if X_train.shape[0] > cfg.max_train_rows:  # a seeded sample is plenty for a propensity
        rows = np.sort(
            np.random.default_rng(cfg.seed).choice(X_train.shape[0], cfg.max_train_rows, replace=False)
        )
        X_train, observed = X_train[rows], observed[rows]
    data = lgb.Dataset(
        X_train,
        observed.astype(np.float64),
        feature_name=names,
        categorical_feature=categorical or "auto",
        free_raw_data=False,
    )
    params = _lgb_params(cfg) | {"learning_rate": 0.1, "num_leaves": 15}
    booster = lgb.train(params, data, num_boost_round=100)
    return [np.clip(booster.predict(x), cfg.propensity_clip, 1.0) for x in X_all]


def _split_enterprises(
    frames: dict[str, pl.DataFrame], share: float, seed: int
) -> dict[str, pl.DataFrame]:
    """Train and validation rows from the train + validation months, split by enterprise."""
    pool = pl.concat([frames["train"], frames["valid"]], how="vertical_relaxed")
    ids = np.sort(pool["enterprise_id"].unique().to_numpy())
    held = ids[np.random.default_rng(seed).random(ids.size) < share]
    is_held = pool["enterprise_id"].is_in(held.tolist())
    return {**frames, "train": pool.filter(~is_held), "valid": pool.filter(is_held)}


def _fit_booster(
    cfg: TrainConfig, selection: str, frames: dict[str, pl.DataFrame], proto: CreditModel, monotone: list[int]
) -> tuple[lgb.Booster, dict[str, Any]]:
    """One booster with early stopping on the validation slice; ``selection`` picks rows and weights."""
    import lightgbm as lgb  # noqa: PLC0415 - heavy
    names, cats = proto.feature_names, proto.categorical
    if cfg.validation == "enterprises":
        frames = _split_enterprises(frames, cfg.valid_share, cfg.seed)
    X = {r: proto.encode(f, neutralise=False) for r, f in frames.items() if r in ("train", "valid")}
    y = {r: frames[r]["label"].to_numpy().astype(np.float64) for r in X}
    keep = {r: np.ones(X[r].shape[0], dtype=bool) for r in X}
    w = {r: np.ones(X[r].shape[0]) for r in X}
    info: dict[str, Any] = {"selection": selection}
    if selection == "ipw":
        obs = {r: frames[r]["observed"].to_numpy() for r in X}
        p_train, p_valid = _propensity(cfg, X["train"], obs["train"], names, cats, [X["train"], X["valid"]])
        for r, p in (("train", p_train), ("valid", p_valid)):
            keep[r] = obs[r] | (y[r] > 0)
            w[r] = 1.0 / p
        info["observed_share_train"] = float(obs["train"].mean())
        info["max_weight"] = float(w["train"][keep["train"]].max()) if keep["train"].any() else 1.0
    caps = {"train": cfg.max_train_rows, "valid": max(1, cfg.max_train_rows // 4)}
    rng = np.random.default_rng(cfg.seed)
    for r in X:
        # Large cities: keep every adverse row and a seeded sample of the clean ones, weighting the
        # sampled ones up by 1 / fraction so the loss (and early stopping) stays unbiased; Platt
        # calibration on the untouched calibration slice fixes the probabilities either way.
        clean = keep[r] & (y[r] == 0)
        room = caps[r] - int((keep[r] & (y[r] > 0)).sum())
        if keep[r].sum() > caps[r] and room > 0 and clean.sum() > room:
            fraction = room / float(clean.sum())
            dropped = clean & (rng.random(clean.size) >= fraction)
            keep[r] &= ~dropped
            w[r] = np.where(clean & ~dropped, w[r] / fraction, w[r])
            info[f"{r}_clean_fraction"] = fraction
    for r in X:
        if y[r][keep[r]].min(initial=1.0) == y[r][keep[r]].max(initial=0.0):
            raise ModelError(
                f"the {r} slice has only one class of outcome ({int(y[r][keep[r]].sum())} adverse "
                f"of {int(keep[r].sum())} rows); use more snapshots or an earlier --as-of"
            )
    train_set = lgb.Dataset(
        X["train"][keep["train"]],
        y["train"][keep["train"]],
        weight=w["train"][keep["train"]],
        feature_name=names,
        categorical_feature=cats or "auto",
        free_raw_data=False,
    )
    valid_set = lgb.Dataset(
        X["valid"][keep["valid"]],
        y["valid"][keep["valid"]],
        weight=w["valid"][keep["valid"]],
        reference=train_set,
        free_raw_data=False,
    )
    curve: dict[str, Any] = {}  # validation metric per round, for the record
    booster = lgb.train(
        _lgb_params(cfg, monotone) | {"metric": cfg.stopping_metric},
        train_set,
        num_boost_round=cfg.max_rounds,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(cfg.early_stopping_rounds, verbose=False, min_delta=cfg.stopping_min_delta),
            lgb.record_evaluation(curve),
        ],
    )
    info["best_iteration"] = int(booster.best_iteration or booster.current_iteration())
    info["train_rows"] = int(keep["train"].sum())
    info["valid_curve"] = [float(v) for v in curve["valid"][cfg.stopping_metric]]
    info["stopped_early"] = info["best_iteration"] < cfg.max_rounds
    # Keep only the trees up to the best iteration, so saved and in-memory models agree.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=info["best_iteration"]))
    return booster, info


def _calibrate(method: str, raw: np.ndarray, y: np.ndarray, seed: int) -> Calibrator:
    """Fit the raw-margin → probability map on the calibration slice (scikit-learn)."""
    from sklearn.isotonic import IsotonicRegression  # noqa: PLC0415 - heavy
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - heavy
    if len(np.unique(y)) < 2:
        raise ModelError("the calibration slice has only one class of outcome; use more snapshots")
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", increasing=True, y_min=1e-6, y_max=1 - 1e-6).fit(
            raw, y
        )
        return Calibrator("isotonic", x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())

    lr = LogisticRegression(C=1e6, random_state=seed).fit(raw.reshape(-1, 1), y)
    slope, intercept = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if slope <= 0:
        raise ModelError(
            f"calibration found no positive relation between score and outcome (slope {slope:.3g})"
        )
    return Calibrator("platt", slope=slope, intercept=intercept)


def _truth_over_horizon(truth: pl.DataFrame, rows: pl.DataFrame, horizon_days: int) -> np.ndarray:
    """Mean latent p_fail over each row's horizon months [t, t + horizon) (NaN where unknown)."""
    snaps = (
        rows.select(pl.col("as_of").unique())
        .with_columns((pl.col("as_of") + pl.duration(days=horizon_days)).alias("end"))
        .lazy()
    )
    mean = (
        truth.lazy()
        .select("enterprise_id", pl.col("month").cast(pl.Date), pl.col("p_fail").cast(pl.Float64))
        .join_where(snaps, pl.col("month") >= pl.col("as_of"), pl.col("month") < pl.col("end"))
        .group_by("enterprise_id", "as_of")
        .agg(pl.col("p_fail").mean().alias("truth"))
    )
    out = rows.select(*KEYS).lazy().join(mean, on=list(KEYS), how="left", maintain_order="left").collect()
    return out["truth"].fill_null(np.nan).to_numpy().astype(np.float64)


def _grades(probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score = np.asarray(score_from_probability(probability))
    return score, np.asarray(grade_from_score(score), dtype=str)


def train_model(
    tables: Mapping[str, pl.LazyFrame],
    known_before: date,
    *,
    truth: pl.DataFrame | None = None,
    config: TrainConfig | None = None,
    features: pl.DataFrame | None = None,
) -> TrainResult:
    """Train and evaluate on what was known before ``known_before`` (D).

    ``features`` may be given precomputed (one row per enterprise and snapshot, as ``build_features``
    returns); otherwise they are built here. ``truth`` (a synthetic city's ``_truth/risk.parquet``)
    adds the Spearman correlation with the latent risk and the oracle's metrics.
    """
    cfg = (config or TrainConfig()).validate()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    plan = plan_snapshots(known_before, cfg.snapshots, cfg.test_snapshots, cfg.horizon_days)
    catalog, model_features = _catalog()
    snaps = [*plan.fit, *plan.test]
    if features is None:
        features = compute_features(tables, snaps)
    timings["features_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    labels = build_labels(tables, snaps, known_before=known_before, horizon_days=cfg.horizon_days).collect()
    timings["labels_s"] = time.perf_counter() - clock
    names = [n for n in model_features if n in features.columns]
    if not names:
        raise ModelError("the feature frame has none of the catalog's model features")
    data = (
        features.select(*KEYS, *names)
        .with_columns(pl.col("as_of").cast(pl.Date))
        .join(labels, on=list(KEYS), how="inner")
        .join(plan.role_frame(), on="as_of", how="inner")
        # A fixed row order: bagging and early stopping see rows in order, so determinism needs it.
        .sort("as_of", "enterprise_id")
    )
    frames = {r: data.filter(pl.col("role") == r) for r in ("train", "valid", "calib", "test")}
    empty = [r for r, f in frames.items() if f.height == 0]
    if empty:
        raise ModelError(
            f"no enterprises in the {', '.join(empty)} snapshot(s) {plan.to_dict()}; "
            f"the lake's history is too short for --as-of {known_before}"
        )
    clock = time.perf_counter()
    categorical = [n for n in names if catalog[n].categorical]
    categories = {
        n: sorted(v for v in frames["train"][n].cast(pl.String).unique().to_list() if v is not None)
        for n in categorical
        if frames["train"].schema[n] == pl.String
    }
    neutral = {}
    for n in names:
        if catalog[n].nuisance:
            spec_neutral = getattr(catalog[n], "neutral", None)
            median = frames["train"][n].cast(pl.Float64).median()
            neutral[n] = float(spec_neutral if spec_neutral is not None else (median or 0.0))  # type: ignore[arg-type]
    monotone = [0 if n in categorical else int(catalog[n].monotone) for n in names]
    proto = CreditModel(
        None,  # type: ignore[arg-type]  # a booster-less model only encodes the training frames
        names,
        categorical=categorical,
        categories=categories,  # type: ignore[arg-type]
        neutral=neutral,
    )

    def fit(selection: str) -> tuple[CreditModel, dict[str, Any]]:
        booster, info = _fit_booster(cfg, selection, frames, proto, monotone)
        model = CreditModel(booster, names, categorical=categorical, categories=categories, neutral=neutral)
        raw = model.predict_raw(frames["calib"])
        model.calibrator = _calibrate(
            cfg.calibration, raw, frames["calib"]["label"].to_numpy().astype(float), cfg.seed
        )
        return model, info

    model, info = fit(cfg.selection)
    timings["fit_s"] = time.perf_counter() - clock
    comparison = comparison_info = None
    if cfg.compare_selection:
        clock = time.perf_counter()
        other = "none" if cfg.selection == "ipw" else "ipw"
        comparison, comparison_info = fit(other)
        timings["fit_comparison_s"] = time.perf_counter() - clock

    # --- out-of-time evaluation on the test snapshots --------------------------------------------
    clock = time.perf_counter()
    test = frames["test"]
    scorers: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
    p = model.predict_proba(test)
    score, grades = _grades(p)
    scorers["lightgbm"] = (score.astype(float), p, grades)
    if comparison is not None:
        pc = comparison.predict_proba(test)
        sc, gc = _grades(pc)
        scorers[f"lightgbm_{'no_ipw' if cfg.selection == 'ipw' else 'ipw'}"] = (sc.astype(float), pc, gc)
    if cfg.baselines:
        points = PointsScorecard().fit().score(tables, test)
        scorers["points_scorecard"] = (points, None, np.asarray(grade_from_score(points), dtype=str))
        plain = [n for n in names if not catalog[n].nuisance and n not in categorical]
        logit = LogisticScorecard(random_state=cfg.seed).fit(
            frames["train"], frames["train"]["label"].to_numpy(), plain
        )
        pl_ = logit.predict_proba(test)
        sl, glog = _grades(pl_)
        scorers["logistic_scorecard"] = (sl.astype(float), pl_, glog)
    timings["baselines_s"] = time.perf_counter() - clock
    truth_values = None
    if truth is not None:
        truth_values = _truth_over_horizon(truth, test, cfg.horizon_days)
        if np.isfinite(truth_values).any():
            known = np.isfinite(truth_values)
            scorers["oracle"] = (np.where(known, truth_values, np.nanmedian(truth_values)), None, None)

    populations = {
        "random": (test["observed_random"].to_numpy(), test["random_fail"].to_numpy()),
        "all": (np.ones(test.height, dtype=bool), test["label"].to_numpy()),
    }
    rows = []
    for scorer, (s, prob, g) in scorers.items():
        for population, (mask, y) in populations.items():
            m = score_metrics(
                y[mask].astype(int),
                s[mask],
                None if prob is None else prob[mask],
                grades=None if g is None else g[mask],
            )
            if population == "all" and truth_values is not None and scorer != "oracle":
                known = np.isfinite(truth_values)
                m["spearman_truth"] = spearman(s[known], truth_values[known])
            rows.append({"scorer": scorer, "population": population, **m})
    metrics = pl.DataFrame(rows, infer_schema_length=None)
    latest = test["as_of"] == test["as_of"].max()
    dist = (
        pl.DataFrame({"grade": grades[latest.to_numpy()]})
        .group_by("grade")
        .len("n")
        .join(pl.DataFrame({"grade": ["A", "B", "C", "D"]}), on="grade", how="right")
        .select("grade", pl.col("n").fill_null(0))
        .with_columns((pl.col("n") / pl.col("n").sum()).alias("share"))
    )
    timings["evaluate_s"] = time.perf_counter() - clock
    schema = feature_schema(data, names, catalog)
    model.metadata = {
        "as_of": known_before,
        "horizon_days": cfg.horizon_days,
        "snapshots": plan.to_dict(),
        "feature_schema_hash": schema_hash(schema),
        "selection": cfg.selection,
        **{k: v for k, v in info.items() if k != "valid_curve"},  # the curve stays in TrainResult.info
    }
    keep_cols = [*KEYS, *names, "label", "observed", "observed_random", "random_fail"]
    return TrainResult(
        model=model,
        metrics=metrics,
        plan=plan,
        config=cfg,
        feature_schema=schema,
        feature_schema_hash=schema_hash(schema),
        test_frame=test.select(keep_cols),
        grade_distribution=dist,
        comparison_model=comparison,
        timings=timings,
        info={
            "model": info,
            "comparison": comparison_info,
            "rows": {r: f.height for r, f in frames.items()},
            "adverse_rate": {r: float(f["label"].mean() or 0.0) for r, f in frames.items()},  # type: ignore[arg-type]
        },
    )
