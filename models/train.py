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
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from features import catalog, compute_features
from features.inspections import RATES as INSPECTION_RATES
from models.artifact import Calibrator, CreditModel
from models.baselines import LogisticScorecard, PointsScorecard, ShareOfPast
from models.evaluate import auc, score_metrics, spearman, truth_over_horizon
from models.grading import grade_from_score, score_from_probability
from models.labels import (
    VISIT_NUISANCE,
    build_labels,
    latest_snapshot,
    monthly_snapshots,
    visit_rows,
)
from riskengine.core.errors import ModelError, UsageError

if TYPE_CHECKING:
    import lightgbm as lgb

KEYS = ("enterprise_id", "as_of")
SELECTIONS = ("ipw", "none")
CALIBRATIONS = ("platt", "isotonic")
VALIDATIONS = ("enterprises", "months")
TARGETS = ("inspection", "horizon")


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
    # The target (issue 11): "inspection" learns what an inspection finds, one row per inspection
    # and sampling test (features as of the month start before it, visit kind and inspector as
    # nuisance held neutral at scoring); "horizon" is any adverse outcome in [t, t + horizon) per
    # enterprise, an unvisited enterprise counting as clean. The run trains the other one beside
    # it and reports both on the same test rows (compare_targets).
    # "horizon" by default: on Boston (README, real data) and the synthetic city it ranks the next
    # inspections and the latent risk better than the inspection rows keyed to month starts do.
    target: str = "horizon"
    compare_targets: bool = True
    # Rolling-origin validation inside the fit months picks the feature set and tree size.
    select: bool = True

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
            ("target", self.target in TARGETS, f"one of {', '.join(TARGETS)}"),
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
            "monotone": int(catalog[n].monotone) if n in catalog else 0,
            "categorical": bool(catalog[n].categorical) if n in catalog else False,
            "nuisance": bool(catalog[n].nuisance) if n in catalog else True,  # visit columns
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


def _grades(probability: np.ndarray, base_rate: float | None = None,
            edges: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    score = np.asarray(score_from_probability(probability, base_rate=base_rate))
    return score, np.asarray(grade_from_score(score, edges), dtype=str)


# Exposure counts (issue 11): how often someone looked, which measures the supervisor as much as the
# enterprise. The "exposure_free" feature set leaves them out and keeps what inspections found.
_EXPOSURE = re.compile(
    r"^inspections__(count|fail|conditional|random|targeted|complaint|follow_up|license)_(\d+d|ever)$"
    r"|^inspections__findings_(minor|serious|critical)_\d+d$|^inspections__days_since_last(_fail)?$"
    r"|^severity__(adverse_365d|index)$|^inspections__never_inspected$"
)
FEATURE_SETS = ("all", "exposure_free", "rates")
# "rates": of the inspection history only the decayed per-inspection rates (features.inspections).
_INSPECTION_HISTORY = re.compile(r"^(inspections|severity)__")
# Tree sizes the rolling-origin validation chooses from: (num_leaves, max_depth, min_data_in_leaf).
TREE_SIZES = ((7, 3, 200), (3, 2, 50))


def feature_set(names: Sequence[str], which: str) -> list[str]:
    """The model features of one candidate set (``FEATURE_SETS``)."""
    if which == "exposure_free":
        return [n for n in names if not _EXPOSURE.match(n)]
    if which == "rates":
        return [n for n in names if not _INSPECTION_HISTORY.match(n) or n in INSPECTION_RATES]
    return list(names)


def usable_features(frame: pl.DataFrame, names: Sequence[str], tables: Mapping[str, pl.LazyFrame],
                    catalog: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The features a model can learn from here, and why each other one is left out.

    A family whose table is absent is named once (``family:<name>``); a column that is empty or the
    same for every fit row carries nothing (optbinning and LightGBM fail or ignore it).
    """
    left_out: dict[str, str] = {}
    present = set(tables)
    kept: list[str] = []
    stats = frame.select(
        *[pl.col(n).drop_nulls().n_unique().alias(n) for n in names]).row(0, named=True) if names else {}
    for n in names:
        family = catalog[n].family
        if family in _FAMILY_TABLE and _FAMILY_TABLE[family] not in present:
            left_out[f"family:{family}"] = f"table {_FAMILY_TABLE[family]} is absent"
            continue
        if stats[n] <= 1:
            left_out[n] = "empty" if stats[n] == 0 else "the same value in every fit row"
            continue
        kept.append(n)
    return kept, left_out


_FAMILY_TABLE = {"inspections": "inspections", "sampling": "sampling_tests", "penalties": "penalties",
                 "recalls": "recalls", "complaints": "complaints", "licenses": "licenses"}


@dataclass
class Candidate:
    """One configuration the rolling-origin validation tries."""

    target: str
    features: str
    tree: tuple[int, int, int]
    fold_auc: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)

    @property
    def mean_auc(self) -> float:
        finite = [a for a in self.fold_auc if math.isfinite(a)]
        return float(np.mean(finite)) if finite else math.nan

    def label(self) -> str:
        return f"{self.target}/{self.features}/leaves{self.tree[0]}"


def _with_tree(cfg: TrainConfig, tree: tuple[int, int, int]) -> TrainConfig:
    return replace(cfg, num_leaves=tree[0], max_depth=tree[1], min_data_in_leaf=tree[2])


def _quick_fit(cfg: TrainConfig, names: list[str], monotone: list[int], categorical: list[str],
               proto: CreditModel, train: pl.DataFrame, valid: pl.DataFrame) -> tuple[lgb.Booster, int]:
    """A booster with early stopping on ``valid`` (the fold's evaluation rows): selection only."""
    import lightgbm as lgb  # noqa: PLC0415 - heavy
    x_train = proto.encode(train, neutralise=False)
    y_train = train["label"].to_numpy().astype(np.float64)
    x_valid = proto.encode(valid, neutralise=False)
    y_valid = valid["label"].to_numpy().astype(np.float64)
    train_set = lgb.Dataset(x_train, y_train, feature_name=names, categorical_feature=categorical or "auto",
                            free_raw_data=False)
    valid_set = lgb.Dataset(x_valid, y_valid, reference=train_set, free_raw_data=False)
    booster = lgb.train(_lgb_params(cfg, monotone) | {"metric": "auc"}, train_set,
                        num_boost_round=min(cfg.max_rounds, 150), valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(20, verbose=False)])
    return booster, int(booster.best_iteration or booster.current_iteration())


def _folds(fit: Sequence[date], n_folds: int = 2, width: int = 2) -> list[tuple[list[date], list[date]]]:
    """Rolling origins over the fit months: train on the months before an origin, evaluate on the
    ``width`` months from it (a month's gap between, so no inspection row is on both sides)."""
    out = []
    months = list(fit)
    for k in range(n_folds, 0, -1):
        end = len(months) - (k - 1) * width
        start = end - width
        if start - 1 < 2:
            continue
        out.append((months[: start - 1], months[start:end]))
    return out


def _plans(known_before: date, cfg: TrainConfig) -> dict[str, SnapshotPlan]:
    return {"horizon": plan_snapshots(known_before, cfg.snapshots, cfg.test_snapshots, cfg.horizon_days),
            "inspection": plan_snapshots(known_before, cfg.snapshots, cfg.test_snapshots, VISIT_MONTH_DAYS)}


def snapshot_dates(known_before: date, config: TrainConfig | None = None) -> list[date]:
    """The as_of dates whose features ``train_model`` needs (both targets' fit and test months), for
    building them elsewhere (e.g. on a cluster) and passing them in as ``features``."""
    cfg = (config or TrainConfig()).validate()
    return sorted({d for p in _plans(known_before, cfg).values() for d in (*p.fit, *p.test)})


def train_model(
    tables: Mapping[str, pl.LazyFrame],
    known_before: date,
    *,
    truth: pl.DataFrame | None = None,
    config: TrainConfig | None = None,
    features: pl.DataFrame | None = None,
    grade_shares: Mapping[str, float] | None = None,
) -> TrainResult:
    """Train and evaluate on what was known before ``known_before`` (D).

    ``features`` may be given precomputed (one row per enterprise and snapshot, as ``build_features``
    returns); otherwise they are built here. ``truth`` (a synthetic city's ``_truth/risk.parquet``)
    adds the Spearman correlation with the latent risk and the oracle's metrics. ``grade_shares``
    (the policy file's ``[grades]``) sets the band edges from the graded population's scores.
    """
    cfg = (config or TrainConfig()).validate()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    # Each target has its own months: an inspection's label is known the day it happens, so the
    # inspection target's test months are the latest before D and its fit months just before them;
    # the horizon target's windows must end by D (module docstring).
    plans = _plans(known_before, cfg)
    plan = plans[cfg.target]
    catalog, model_features = _catalog()
    snaps = snapshot_dates(known_before, cfg)
    if features is None:
        features = compute_features(tables, snaps)
    timings["features_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    h_snaps = [*plans["horizon"].fit, *plans["horizon"].test]
    labels = build_labels(tables, h_snaps, known_before=known_before, horizon_days=cfg.horizon_days).collect()
    visits = visit_rows(tables, snaps, known_before=known_before).collect()
    timings["labels_s"] = time.perf_counter() - clock
    names = [n for n in model_features if n in features.columns]
    if not names:
        raise ModelError("the feature frame has none of the catalog's model features")
    feats = features.select(*KEYS, *names).with_columns(pl.col("as_of").cast(pl.Date))
    roles_of = {t: p.role_frame() for t, p in plans.items()}
    fit_rows = feats.join(roles_of[cfg.target].filter(pl.col("role") != "test"), on="as_of", how="semi")
    names, left_out = usable_features(fit_rows, names, tables, catalog)
    if not names:
        raise ModelError(f"no feature varies across the fit snapshots ({', '.join(sorted(left_out))} "
                         f"left out); the lake holds too little history before --as-of {known_before}")
    enterprise_data = (
        feats.select(*KEYS, *names)
        .join(labels, on=list(KEYS), how="inner")
        .join(roles_of["horizon"], on="as_of", how="inner")
        # A fixed row order: bagging and early stopping see rows in order, so determinism needs it.
        .sort("as_of", "enterprise_id")
    )
    nuisance_visit = [c for c in VISIT_NUISANCE if visits[c].n_unique() > 1] if visits.height else []
    visit_data = (
        visits.join(feats.select(*KEYS, *names), on=list(KEYS), how="inner")
        .join(roles_of["inspection"], on="as_of", how="inner")
        .sort("as_of", "enterprise_id", "day")
    )
    data_of = {"horizon": enterprise_data, "inspection": visit_data}
    frames_of = {t: {r: d.filter(pl.col("role") == r) for r in ("train", "valid", "calib", "test")}
                 for t, d in data_of.items()}
    for t in TARGETS:
        empty = [r for r, f in frames_of[t].items() if f.height == 0 or f["label"].n_unique() < 2]
        if empty and (t == cfg.target):
            other = "horizon" if t == "inspection" else "inspection"
            raise ModelError(
                f"the {t} target has no rows or one class of outcome in the {', '.join(empty)} "
                f"snapshot(s) {plans[t].to_dict()}; the lake's history is too short for --as-of "
                f"{known_before} (or try --target {other})")
    targets = [cfg.target] + ([t for t in TARGETS if t != cfg.target] if cfg.compare_targets else [])
    usable_targets = [t for t in targets if all(
        f.height and f["label"].n_unique() == 2 for r, f in frames_of[t].items() if r != "test")]
    skipped: dict[str, str] = {}
    for t in targets:
        if t not in usable_targets:
            skipped[f"lightgbm_{t}"] = f"the {t} target has one class of outcome in a fit slice"
    categorical_all = [n for n in names if catalog[n].categorical]
    categories = {
        n: sorted(v for v in frames_of["horizon"]["train"][n].cast(pl.String).unique().to_list()
                  if v is not None)
        for n in categorical_all
        if enterprise_data.schema[n] == pl.String
    }
    neutral_base: dict[str, float] = {}
    for n in names:
        if catalog[n].nuisance:
            spec_neutral = getattr(catalog[n], "neutral", None)
            median = frames_of["horizon"]["train"][n].cast(pl.Float64).median()
            neutral_base[n] = float(spec_neutral if spec_neutral is not None else (median or 0.0))  # type: ignore[arg-type]

    def model_columns(target: str, which: str) -> tuple[list[str], list[str], dict[str, float], list[int]]:
        cols = feature_set(names, which)
        cats = [n for n in cols if n in categorical_all]
        neutral = {n: v for n, v in neutral_base.items() if n in cols}
        monotone = [0 if n in cats else int(catalog[n].monotone) for n in cols]
        if target == "inspection":
            cols = [*cols, *nuisance_visit]
            neutral |= {n: 0.0 for n in nuisance_visit}
            monotone += [0] * len(nuisance_visit)
        return cols, cats, neutral, monotone

    def proto_for(target: str, which: str) -> tuple[CreditModel, list[int]]:
        cols, cats, neutral, monotone = model_columns(target, which)
        cat_levels = {k: v for k, v in categories.items() if k in cols}
        return CreditModel(None, cols, categorical=cats, categories=cat_levels, neutral=neutral), monotone  # type: ignore[arg-type]

    # --- rolling-origin validation: feature set and tree size per target ------------------------------
    clock = time.perf_counter()
    chosen: dict[str, Candidate] = {}
    selection_log: list[dict[str, Any]] = []
    for t in usable_targets:
        folds = _folds(plans[t].fit) if cfg.select else []
        cands = [Candidate(t, fs, tree) for fs in FEATURE_SETS for tree in TREE_SIZES] if folds else []
        for cand in cands:
            proto, monotone = proto_for(t, cand.features)
            if not proto.feature_names:
                continue
            for train_months, eval_months in folds:
                tr = data_of[t].filter(pl.col("as_of").is_in(train_months))
                ev = data_of[t].filter(pl.col("as_of").is_in(eval_months))
                random = ev.filter(pl.col("observed_random"))
                # Judge on random visits where there are enough (what a grade estimates, unbiased by
                # who gets visited); every evaluation row otherwise.
                if random.height >= 200 and random["label"].n_unique() == 2:
                    ev = random
                if tr["label"].n_unique() < 2 or ev["label"].n_unique() < 2:
                    continue
                booster, rounds = _quick_fit(_with_tree(cfg, cand.tree), proto.feature_names, monotone,
                                             proto.categorical, proto, tr, ev)
                p = booster.predict(proto.encode(ev), raw_score=True)
                cand.fold_auc.append(auc(ev["label"].to_numpy().astype(int), p))
                cand.rounds.append(rounds)
            selection_log.append({"candidate": cand.label(), "fold_auc": cand.fold_auc, "rounds": cand.rounds,
                                  "mean_auc": cand.mean_auc})
        scored = [c for c in cands if math.isfinite(c.mean_auc)]
        chosen[t] = max(scored, key=lambda c: c.mean_auc) if scored else Candidate(t, "all", TREE_SIZES[0])
    timings["select_s"] = time.perf_counter() - clock

    clock = time.perf_counter()

    def fit(target: str, selection: str) -> tuple[CreditModel, dict[str, Any]]:
        cand = chosen[target]
        proto, monotone = proto_for(target, cand.features)
        tcfg = _with_tree(cfg, cand.tree)
        booster, info = _fit_booster(tcfg, selection, frames_of[target], proto, monotone)
        model = CreditModel(booster, proto.feature_names, categorical=proto.categorical,
                            categories=proto.categories, neutral=proto.neutral)
        calib = frames_of[target]["calib"]
        # Calibrate on the visits as they happened (kind and inspector as observed): the map from
        # margin to probability then holds for a random visit by an average inspector at scoring.
        raw = np.asarray(booster.predict(proto.encode(calib, neutralise=False), raw_score=True),
                         dtype=np.float64)
        model.calibrator = _calibrate(cfg.calibration, raw, calib["label"].to_numpy().astype(float), cfg.seed)
        info |= {"target": target, "feature_set": cand.features, "num_leaves": cand.tree[0],
                 "max_depth": cand.tree[1], "min_data_in_leaf": cand.tree[2]}
        return model, info

    model, info = fit(cfg.target, cfg.selection)
    timings["fit_s"] = time.perf_counter() - clock
    comparison = comparison_info = None
    if cfg.compare_selection:
        clock = time.perf_counter()
        other = "none" if cfg.selection == "ipw" else "ipw"
        comparison, comparison_info = fit(cfg.target, other)
        timings["fit_comparison_s"] = time.perf_counter() - clock
    other_targets: dict[str, CreditModel] = {}
    for t in usable_targets:
        if t != cfg.target:
            clock = time.perf_counter()
            other_targets[t], _ = fit(t, "none")
            timings[f"fit_{t}_s"] = time.perf_counter() - clock

    # --- out-of-time evaluation on the test snapshots (enterprise rows: every target alike) ------
    clock = time.perf_counter()
    test = frames_of["horizon"]["test"]
    # Visits of the inspection target's test months (the latest before D): every scorer is compared
    # on them; "inspected" keeps each enterprise's first visit there (what a plan would order).
    visits_test = frames_of["inspection"]["test"]
    first = visits_test.sort("day").unique("enterprise_id", keep="first", maintain_order=True).sort(
        "as_of", "enterprise_id")
    latest_month = feats.filter(pl.col("as_of") == plans["inspection"].test[-1])
    base_rate, edges = population_bands(model.predict_proba(latest_month), grade_shares)
    model.metadata["score_base_rate"] = base_rate
    model.metadata["band_edges"] = list(edges) if edges is not None else None
    scorers: dict[str, dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]] = {}

    evaluated = {"all": test, "random": visits_test.filter(pl.col("observed_random")), "inspected": first}

    def graded(m: CreditModel) -> dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        out = {}
        for population, rows in evaluated.items():
            p = m.predict_proba(rows)
            s, g = _grades(p, base_rate, edges)
            out[population] = (s.astype(float), p, g)
        return out

    def ungraded(score: Any) -> dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        return {population: (score(rows), None, None) for population, rows in evaluated.items()}

    scorers["lightgbm"] = graded(model)
    if comparison is not None:
        scorers[f"lightgbm_{'no_ipw' if cfg.selection == 'ipw' else 'ipw'}"] = graded(comparison)
    for t, m in other_targets.items():
        scorers[f"lightgbm_{t}"] = graded(m)
    if cfg.baselines:
        points = PointsScorecard().fit()
        scorers["points_scorecard"] = ungraded(lambda rows: points.score(tables, rows))
        scorers["share_of_past"] = ungraded(lambda rows: ShareOfPast().score(tables, rows))
        plain = [n for n in names if not catalog[n].nuisance and n not in categorical_all]
        try:
            logit = LogisticScorecard(random_state=cfg.seed).fit(
                frames_of["horizon"]["train"], frames_of["horizon"]["train"]["label"].to_numpy(), plain)
            scorers["logistic_scorecard"] = {}
            for population, rows in evaluated.items():
                pl_ = logit.predict_proba(rows)
                sl, glog = _grades(pl_, base_rate, edges)
                scorers["logistic_scorecard"][population] = (sl.astype(float), pl_, glog)
        except Exception as exc:  # noqa: BLE001 - a baseline that cannot be fitted is reported, not fatal
            skipped["logistic_scorecard"] = _first_line(exc)
    timings["baselines_s"] = time.perf_counter() - clock
    truth_values = None
    if truth is not None:
        truth_values = truth_over_horizon(truth, test, cfg.horizon_days)
        if np.isfinite(truth_values).any():
            known = np.isfinite(truth_values)
            scorers["oracle"] = {}
            for population, rows_ in evaluated.items():
                # Visits: the latent risk of the visit's month; enterprises: over the horizon.
                days = cfg.horizon_days if population == "all" else VISIT_MONTH_DAYS
                values = truth_over_horizon(truth, rows_, days)
                if np.isfinite(values).any():
                    filled = np.where(np.isfinite(values), values, np.nanmedian(values))
                    scorers["oracle"][population] = (filled, None, None)

    rows = []
    for scorer, by_population in scorers.items():
        for population, (s, prob, g) in by_population.items():
            y = evaluated[population]["label"].to_numpy()
            m = score_metrics(y.astype(int), s, prob, grades=g)
            if population == "all" and truth_values is not None and scorer != "oracle":
                known = np.isfinite(truth_values)
                m["spearman_truth"] = spearman(s[known], truth_values[known])
            if population == "inspected":
                m |= inspector_measures(evaluated[population], s, y)
            rows.append({"scorer": scorer, "population": population, **m})
    metrics = pl.DataFrame(rows, infer_schema_length=None)
    dist = (
        pl.DataFrame({"grade": _grades(model.predict_proba(latest_month), base_rate, edges)[1]})
        .group_by("grade")
        .len("n")
        .join(pl.DataFrame({"grade": ["A", "B", "C", "D"]}), on="grade", how="right")
        .select("grade", pl.col("n").fill_null(0))
        .with_columns((pl.col("n") / pl.col("n").sum()).alias("share"))
    )
    timings["evaluate_s"] = time.perf_counter() - clock
    schema = feature_schema(test, [n for n in model.feature_names if n in test.columns], catalog)
    model.metadata |= {
        "as_of": known_before,
        "horizon_days": cfg.horizon_days,
        "snapshots": plan.to_dict(),
        "target_description": TARGET_TEXT[cfg.target],
        "feature_schema_hash": schema_hash(schema),
        "selection": cfg.selection,
        "target": cfg.target,
        **{k: v for k, v in info.items() if k != "valid_curve"},  # the curve stays in TrainResult.info
    }
    # promote compares champion and challenger on what this model estimates: the horizon label of
    # every enterprise, or what the next visit found.
    backtest = (test if cfg.target == "horizon" else first).select(
        *KEYS, *names, "label", "observed", "observed_random", "random_fail")
    return TrainResult(
        model=model,
        metrics=metrics,
        plan=plan,
        config=cfg,
        feature_schema=schema,
        feature_schema_hash=schema_hash(schema),
        test_frame=backtest,
        grade_distribution=dist,
        comparison_model=comparison,
        timings=timings,
        info={
            "model": info,
            "comparison": comparison_info,
            "rows": {r: f.height for r, f in frames_of[cfg.target].items()},
            "plans": {t: p.to_dict() for t, p in plans.items()},
            "adverse_rate": {r: float(f["label"].mean() or 0.0) for r, f in frames_of[cfg.target].items()},  # type: ignore[arg-type]
            "left_out": left_out,
            "skipped": skipped,
            "selection": selection_log,
            "chosen": {t: c.label() for t, c in chosen.items()},
            "bands": {"score_base_rate": base_rate, "band_edges": None if edges is None else list(edges),
                      "shares": dict(grade_shares) if grade_shares else None},
        },
    )


VISIT_MONTH_DAYS = 31  # an inspection row's label window: the month of its snapshot
TARGET_TEXT = {
    "inspection": "the chance that an inspection now, on a random visit by an average inspector, finds an "
                  "adverse outcome (failed, or a critical violation); learnt from every inspection and "
                  "sampling test as its own row",
    "horizon": "the chance of any adverse outcome (CONTRACT section 2) within the horizon, per enterprise; "
               "an enterprise nobody looked at counts as clean",
}


def population_bands(probability: np.ndarray, shares: Mapping[str, float] | None
                     ) -> tuple[float, tuple[int, int, int] | None]:
    """The score scale's anchor and the band edges that follow the graded population.

    The anchor is the population's mean probability (score 500 = an ordinary enterprise of this
    population, whatever its base rate). With ``shares`` (policy file ``[grades]``), the edges are
    the score quantiles that give A, B, C, D about those shares; without, None (Settings' edges).
    """
    p = np.asarray(probability, dtype=np.float64)
    base = float(np.clip(p.mean(), 1e-4, 1 - 1e-4)) if p.size else 0.02
    if not shares or p.size == 0:
        return base, None
    score = np.asarray(score_from_probability(p, base_rate=base), dtype=np.float64)
    cumulative = np.cumsum([shares[g] for g in ("A", "B", "C")])
    # Scores tie (integers; many enterprises share a history), so each edge is the score whose share
    # below it comes closest to the target, not a raw quantile that would push a whole tie up.
    values = np.unique(score)
    below = np.searchsorted(np.sort(score), values, side="left") / score.size
    edges: list[int] = []
    for q in cumulative:
        c = int(values[int(np.argmin(np.abs(below - q)))])
        c = max(1, min(1000, c))
        # A score at or above an edge is in the higher band; keep the edges strictly increasing.
        edges.append(c if not edges or c > edges[-1] else min(1000, edges[-1] + 1))
    return base, (edges[0], edges[1], edges[2])


def inspector_measures(rows: pl.DataFrame, score: np.ndarray, y: np.ndarray,
                       per: float = 100.0) -> dict[str, float]:
    """What an inspector feels, on the enterprises inspected in the test months (Chicago's measure).

    ``days_earlier``: visiting the same enterprises on the same days but in order of score instead of
    the order they were visited, the mean number of days earlier an adverse finding is found.
    ``hits_per_100``: adverse findings per 100 visits among the top fifth by score
    (a plan's capacity), against ``hits_per_100_all`` for the visits as they happened.
    """
    if rows.height == 0 or y.sum() == 0:
        return {"days_earlier": math.nan, "hits_per_100": math.nan, "hits_per_100_all": math.nan}
    days = rows["day"].to_numpy()
    scheduled = np.empty_like(days)
    scheduled[np.argsort(-score, kind="mergesort")] = np.sort(days)  # the riskiest gets the first day
    adverse = y.astype(bool)
    earlier = (days[adverse] - scheduled[adverse]) / np.timedelta64(1, "D")
    top = np.argsort(-score, kind="mergesort")[: max(1, len(score) // 5)]
    return {"days_earlier": float(np.mean(earlier)), "hits_per_100": float(per * y[top].mean()),
            "hits_per_100_all": float(per * y.mean())}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]
