"""Fitting one LightGBM booster: its parameters, the propensity weights of the IPW variant, the
enterprise split for early stopping, and the calibration of its margin to a probability."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from models.artifact import Calibrator, CreditModel
from models.train_config import TrainConfig
from riskengine.core.errors import ModelError

if TYPE_CHECKING:
    import lightgbm as lgb


def lgb_params(cfg: TrainConfig, monotone: list[int] | None = None) -> dict[str, Any]:
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


def propensity(
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
    params = lgb_params(cfg) | {"learning_rate": 0.1, "num_leaves": 15}
    booster = lgb.train(params, data, num_boost_round=100)
    return [np.clip(booster.predict(x), cfg.propensity_clip, 1.0) for x in X_all]


def split_enterprises(
    frames: dict[str, pl.DataFrame], share: float, seed: int
) -> dict[str, pl.DataFrame]:
    """Train and validation rows from the train + validation months, split by enterprise."""
    pool = pl.concat([frames["train"], frames["valid"]], how="vertical_relaxed")
    ids = np.sort(pool["enterprise_id"].unique().to_numpy())
    held = ids[np.random.default_rng(seed).random(ids.size) < share]
    is_held = pool["enterprise_id"].is_in(held.tolist())
    return {**frames, "train": pool.filter(~is_held), "valid": pool.filter(is_held)}


def fit_booster(
    cfg: TrainConfig, selection: str, frames: dict[str, pl.DataFrame], proto: CreditModel, monotone: list[int]
) -> tuple[lgb.Booster, dict[str, Any]]:
    """One booster with early stopping on the validation slice; ``selection`` picks rows and weights."""
    import lightgbm as lgb  # noqa: PLC0415 - heavy
    names, cats = proto.feature_names, proto.categorical
    if cfg.validation == "enterprises":
        frames = split_enterprises(frames, cfg.valid_share, cfg.seed)
    X = {r: proto.encode(f, neutralise=False) for r, f in frames.items() if r in ("train", "valid")}
    y = {r: frames[r]["label"].to_numpy().astype(np.float64) for r in X}
    keep = {r: np.ones(X[r].shape[0], dtype=bool) for r in X}
    # Design weights of the plans' draws (inspection target; models.labels.design_weights), else 1.
    w = {r: (frames[r]["design_weight"].to_numpy().astype(np.float64) if "design_weight" in frames[r].columns
             else np.ones(X[r].shape[0])) for r in X}
    info: dict[str, Any] = {"selection": selection}
    if selection == "ipw":
        obs = {r: frames[r]["observed"].to_numpy() for r in X}
        p_train, p_valid = propensity(cfg, X["train"], obs["train"], names, cats, [X["train"], X["valid"]])
        for r, p in (("train", p_train), ("valid", p_valid)):
            keep[r] = obs[r] | (y[r] > 0)
            w[r] = w[r] / p
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
        lgb_params(cfg, monotone) | {"metric": cfg.stopping_metric},
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


def calibrate(method: str, raw: np.ndarray, y: np.ndarray, seed: int) -> Calibrator:
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


def calibrate_on(model: CreditModel, rows: pl.DataFrame, method: str, seed: int) -> Calibrator:
    """``calibrate`` on ``rows`` as they happened: their nuisance columns (a visit's kind and
    inspector) as observed, so the map from margin to probability holds for a random visit by an
    average inspector once scoring holds them neutral."""
    raw = np.asarray(model.booster.predict(model.encode(rows, neutralise=False), raw_score=True),
                     dtype=np.float64)
    return calibrate(method, raw, rows["label"].to_numpy().astype(float), seed)


def quick_fit(cfg: TrainConfig, names: list[str], monotone: list[int], categorical: list[str],
               proto: CreditModel, train: pl.DataFrame) -> tuple[lgb.Booster, int]:
    """A booster for selection only, early-stopped on a held-out share of the training months'
    enterprises (``cfg.valid_share``): never on the fold's evaluation months, whose score would then
    pick its own best round and hide a candidate that fails out of time."""
    import lightgbm as lgb  # noqa: PLC0415 - heavy
    split = split_enterprises({"train": train, "valid": train.clear()}, cfg.valid_share, cfg.seed)
    fit, stop = split["train"], split["valid"]
    if stop.height == 0 or stop["label"].n_unique() < 2:
        fit, stop = train, train
    x_fit, y_fit = proto.encode(fit, neutralise=False), fit["label"].to_numpy().astype(np.float64)
    x_stop, y_stop = proto.encode(stop, neutralise=False), stop["label"].to_numpy().astype(np.float64)
    fit_set = lgb.Dataset(x_fit, y_fit, feature_name=names, categorical_feature=categorical or "auto",
                          free_raw_data=False)
    stop_set = lgb.Dataset(x_stop, y_stop, reference=fit_set, free_raw_data=False)
    booster = lgb.train(lgb_params(cfg, monotone) | {"metric": cfg.stopping_metric}, fit_set,
                        num_boost_round=min(cfg.max_rounds, 150), valid_sets=[stop_set],
                        callbacks=[lgb.early_stopping(20, verbose=False)])
    return booster, int(booster.best_iteration or booster.current_iteration())
