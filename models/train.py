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

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from features import catalog, compute_features
from models.artifact import CreditModel
from models.baselines import LogisticScorecard, PointsScorecard, ShareOfPast
from models.blend import blend_models, merge_boosters
from models.booster import calibrate_on, fit_booster
from models.evaluate import score_metrics, spearman, truth_over_horizon
from models.grading import grade_from_score, score_float, score_from_probability
from models.labels import VISIT_NUISANCE, build_labels, design_weights, visit_rows
from models.rolling_origin import choose_candidates, feature_set, usable_features, with_tree
from models.train_config import (
    BLEND,
    COMPONENTS,
    KEYS,
    VISIT_MONTH_DAYS,
    TrainConfig,
    TrainResult,
    feature_schema,
    schema_hash,
    snapshot_dates,
    snapshot_plans,
)
from riskengine.core.errors import ModelError

# The blend is calibrated and tested on the inspection target's rows (visits).
BASE_OF = {BLEND: "inspection"}


def _first_visit(tables: Mapping[str, pl.LazyFrame], known_before: date) -> date | None:
    """The day of the lake's first inspection or sampling test before D (None: none)."""
    days = [tables[name].filter(pl.col(column) < known_before).select(pl.col(column).min())
            for name, column in (("inspections", "inspected_on"), ("sampling_tests", "sampled_on"))
            if name in tables and column in tables[name].collect_schema().names()]
    found = [d for d in (frame.collect().item() for frame in days) if d is not None]
    return min(found) if found else None


def _observed_share(rows: pl.DataFrame) -> float:
    """The share of the horizon target's rows with a visit (inspection or sampling test) within the
    horizon: how much of its label says what a visit found (models.blend.looked_weight)."""
    return float(rows["observed"].cast(pl.Float64).mean()) if rows.height else math.nan


def _judged_visits(calib_visits: pl.DataFrame, start: date, feats: pl.DataFrame) -> pl.DataFrame:
    """The rows the blend's weights are judged on (models.blend.blend_models), as a grade is used:
    set at the first calibration month ``start``, then each enterprise's first visit over the
    calibration months."""
    return (calib_visits.sort("enterprise_id", "day", "label", maintain_order=True)
            .unique("enterprise_id", keep="first", maintain_order=True)
            .select("enterprise_id", "label", "observed_random")
            .join(feats.filter(pl.col("as_of") == start), on="enterprise_id", how="inner")
            .sort("enterprise_id"))


def _catalog() -> tuple[Mapping[str, Any], list[str]]:
    return catalog.FEATURES, list(catalog.MODEL_FEATURES)


def _grades(probability: np.ndarray, base_rate: float | None = None,
            edges: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    score = np.asarray(score_from_probability(probability, base_rate=base_rate))
    return score, np.asarray(grade_from_score(score, edges), dtype=str)


def train_model(
    tables: Mapping[str, pl.LazyFrame],
    known_before: date,
    *,
    truth: pl.DataFrame | None = None,
    config: TrainConfig | None = None,
    features: pl.DataFrame | None = None,
    grade_shares: Mapping[str, float] | None = None,
    inclusion: pl.DataFrame | None = None,
) -> TrainResult:
    """Train and evaluate on what was known before ``known_before`` (D).

    ``features`` may be given precomputed (one row per enterprise and snapshot, as ``build_features``
    returns); otherwise they are built here. ``truth`` (a synthetic city's ``_truth/risk.parquet``)
    adds the Spearman correlation with the latent risk and the oracle's metrics. ``grade_shares``
    (the policy file's ``[grades]``) sets the band edges from the graded population's scores.
    ``inclusion`` (the stored plans' draws: ``enterprise_id``, ``month``, ``inclusion_probability``)
    weights the inspection target's random visits by their design (``models.labels.design_weights``).
    """
    cfg = (config or TrainConfig()).validate()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    # Each target has its own months: an inspection's label is known the day it happens, so the
    # inspection target's test months are the latest before D and its fit months just before them;
    # the horizon target's windows must end by D (module docstring).
    plans = snapshot_plans(known_before, cfg, _first_visit(tables, known_before))
    catalog, model_features = _catalog()
    snaps = snapshot_dates(known_before, cfg)
    if features is None:
        features = compute_features(tables, snaps)
    timings["features_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    h_snaps = [*plans["horizon"].fit, *plans["horizon"].test]
    labels = build_labels(tables, h_snaps, known_before=known_before, horizon_days=cfg.horizon_days).collect()
    visits = visit_rows(tables, snaps, known_before=known_before,
                        window_months=cfg.visit_window_months).collect()
    visits = visits.with_columns(design_weights(visits, inclusion))
    timings["labels_s"] = time.perf_counter() - clock
    names = [n for n in model_features if n in features.columns]
    if not names:
        raise ModelError("the feature frame has none of the catalog's model features")
    feats = features.select(*KEYS, *names).with_columns(pl.col("as_of").cast(pl.Date))
    roles_of = {t: p.role_frame() for t, p in plans.items()}
    fit_roles = pl.concat([roles_of[t] for t in ((cfg.target,) if cfg.target in COMPONENTS else COMPONENTS)])
    fit_rows = feats.join(fit_roles.filter(pl.col("role") != "test"), on="as_of", how="semi")
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
        # Every column that can differ between two visits of a day: a fixed order, so bagging, the
        # enterprise split and the blend's first visits are the same on every run.
        .sort("as_of", "enterprise_id", "day", "label", *[c for c in VISIT_NUISANCE if c in visits.columns],
              "design_weight")
    )
    data_of = {"horizon": enterprise_data, "inspection": visit_data}
    frames_of = {t: {r: d.filter(pl.col("role") == r) for r in ("train", "valid", "calib", "test")}
                 for t, d in data_of.items()}
    # The blend (models.blend) fits both targets and merges them; either alone fits itself.
    fitted = list(COMPONENTS) if cfg.target == BLEND else [cfg.target]
    problems: dict[str, str] = {}
    for t in COMPONENTS:
        empty = [r for r, f in frames_of[t].items() if f.height == 0 or f["label"].n_unique() < 2]
        if empty and t in fitted:
            other = "horizon" if t == "inspection" else "inspection"
            months = plans[t].to_dict()
            spans = ", ".join(f"{r} {months[r][0]}..{months[r][-1]}" for r in empty)
            first = (tables["inspections"].select(pl.col("inspected_on").min()).collect().item()
                     if "inspections" in tables else None)
            problems[t] = (
                f"the {t} target has no rows or one class of outcome in its {spans} months; the lake's "
                f"inspections start {first or 'nowhere'}, too late for --as-of {known_before} "
                f"(try fewer --snapshots, a later --as-of, or --target {other})")
    if problems and len(problems) == len(fitted):
        raise ModelError(problems[fitted[-1]])
    targets = fitted + ([t for t in COMPONENTS if t not in fitted] if cfg.compare_targets else [])
    usable_targets = [t for t in targets if t not in problems and all(
        f.height and f["label"].n_unique() == 2 for r, f in frames_of[t].items() if r != "test")]
    skipped: dict[str, str] = {}
    for t in targets:
        if t not in usable_targets:
            skipped[f"lightgbm_{t}"] = problems.get(
                t, f"the {t} target has one class of outcome in a fit slice")
    # What the shipped model is: the blend of both targets, or the one of them that can be fitted.
    blend_parts = [t for t in fitted if t in usable_targets]
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
    chosen, selection_log = choose_candidates(usable_targets, cfg, {t: plans[t].fit for t in usable_targets},
                                              data_of, proto_for)
    timings["select_s"] = time.perf_counter() - clock

    clock = time.perf_counter()

    def fit(target: str, selection: str) -> tuple[CreditModel, dict[str, Any]]:
        cand = chosen[target]
        proto, monotone = proto_for(target, cand.features)
        tcfg = with_tree(cfg, cand.tree)
        # Bagging (TrainConfig.bags): the same model fitted with consecutive seeds (feature and row
        # sampling, the validation split), merged into one booster whose margin is their mean.
        fits = [fit_booster(replace(tcfg, seed=cfg.seed + b), selection, frames_of[target], proto, monotone)
                for b in range(cfg.bags)]
        booster, info = fits[0]
        if len(fits) > 1:
            booster = merge_boosters([(b, proto.feature_names, 1.0 / len(fits)) for b, _ in fits],
                                     proto.feature_names)
            info |= {"bags": len(fits), "best_iteration": booster.num_trees(),
                     "bag_iterations": [i["best_iteration"] for _, i in fits]}
        model = CreditModel(booster, proto.feature_names, categorical=proto.categorical,
                            categories=proto.categories, neutral=proto.neutral)
        model.calibrator = calibrate_on(model, frames_of[target]["calib"], cfg.calibration, cfg.seed)
        info |= {"target": target, "feature_set": cand.features, "num_leaves": cand.tree[0],
                 "max_depth": cand.tree[1], "min_data_in_leaf": cand.tree[2]}
        return model, info

    components: dict[str, tuple[CreditModel, dict[str, Any]]] = {}
    for t in blend_parts:
        try:
            components[t] = fit(t, cfg.selection)
        except ModelError as exc:  # a blend's part that cannot be fitted leaves the other alone
            if len(blend_parts) == 1 or (len(components) == 0 and t == blend_parts[-1]):
                raise
            skipped[f"lightgbm_{t}"] = str(exc)
    main_target = next(iter(components))
    if len(components) == 2:
        judged = _judged_visits(frames_of["inspection"]["calib"], plans["inspection"].calib[0], feats)
        try:
            model, info = blend_models(components["horizon"][0], components["inspection"][0], judged,
                                       frames_of["inspection"]["calib"], cfg.calibration, cfg.seed,
                                       cfg.blend_weight, _observed_share(frames_of["horizon"]["train"]))
            main_target = BLEND
            info["components"] = {t: {k: v for k, v in i.items() if k != "valid_curve"}
                                  for t, (_, i) in components.items()}
        except ModelError as exc:
            skipped["blend"] = f"{exc}; the model is the {main_target} target's alone"
    elif cfg.target == BLEND:
        skipped["blend"] = f"only the {main_target} target can be fitted here; the model is its alone"
    if main_target != BLEND:
        model, info = components[main_target]
    other_targets = {t: m for t, (m, _) in components.items() if t != main_target}
    plan = plans[main_target]
    timings["fit_s"] = time.perf_counter() - clock
    comparison = comparison_info = None
    if cfg.compare_selection and main_target != BLEND:
        clock = time.perf_counter()
        other = "none" if cfg.selection == "ipw" else "ipw"
        comparison, comparison_info = fit(main_target, other)
        timings["fit_comparison_s"] = time.perf_counter() - clock
    for t in usable_targets:
        if t not in other_targets and t != main_target and f"lightgbm_{t}" not in skipped:
            clock = time.perf_counter()
            try:
                other_targets[t], _ = fit(t, "none")
            except ModelError as exc:  # a comparison that cannot be fitted is reported, not fatal
                skipped[f"lightgbm_{t}"] = str(exc)
            timings[f"fit_{t}_s"] = time.perf_counter() - clock

    # --- out-of-time evaluation on the test snapshots (enterprise rows: every target alike) ------
    clock = time.perf_counter()
    test = frames_of["horizon"]["test"]
    # Visits of the inspection target's test months (the latest before D): every scorer is compared
    # on them; "inspected" keeps each enterprise's first visit there (what a plan would order).
    visits_test = frames_of["inspection"]["test"]
    first = visits_test.sort("day", maintain_order=True).unique(
        "enterprise_id", keep="first", maintain_order=True).sort(
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
    if other_targets:
        # Both targets' calibrated log-odds averaged (issue 11's "combine the two by a documented
        # rule"): what a visit finds and what happens over the horizon, reported beside each alone.
        # The unrounded score is affine in the log-odds, so its mean ranks as the mean log-odds does.
        both = [m for t, m in ({main_target: model} | other_targets).items() if t in COMPONENTS]
        scorers["lightgbm_mean_logodds"] = ungraded(
            lambda rows: np.mean([score_float(m.predict_proba(rows)) for m in both], axis=0))
    if cfg.baselines:
        # Every baseline is fitted on the training rows and scores the evaluated rows the same way.
        train_rows = frames_of["horizon"]["train"]
        train_y = train_rows["label"].to_numpy()
        points = PointsScorecard().fit(train_rows, train_y, tables=tables)
        scorers["points_scorecard"] = ungraded(points.decision_function)
        share = ShareOfPast().fit(train_rows, train_y, tables=tables)
        scorers["share_of_past"] = ungraded(share.decision_function)
        plain = [n for n in names if not catalog[n].nuisance and n not in categorical_all]
        try:
            logit = LogisticScorecard(random_state=cfg.seed).fit(train_rows, train_y, feature_names=plain)
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
                # The probability where there is one: the 0-1000 score is rounded and clipped, and its ties
                # move the correlation by 0.01-0.02 with the scale's anchor (benchmarks/city_grades.py).
                ranked = s if prob is None else prob
                m["spearman_truth"] = spearman(ranked[known], truth_values[known])
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
        "target_description": TARGET_TEXT[main_target],
        "feature_schema_hash": schema_hash(schema),
        "selection": cfg.selection,
        "target": main_target,
        **{k: v for k, v in info.items() if k != "valid_curve"},  # the curve stays in TrainResult.info
    }
    # promote compares champion and challenger on what this model estimates: the horizon label of
    # every enterprise, or what the next visit found.
    # It carries every catalog feature of the frame, not only the ones this run kept: a champion
    # trained elsewhere may use a column that is constant here (and left out of this model).
    back = test if main_target == "horizon" else first
    kept = [n for n in (*names, *nuisance_visit) if n in back.columns]
    backtest = back.select(*KEYS, *kept, "label", "observed", "observed_random", "random_fail").join(
        feats.select(*KEYS, *[c for c in feats.columns if c not in KEYS and c not in kept]),
        on=list(KEYS), how="left")
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
        target_models=other_targets,
        timings=timings,
        info={
            "model": info,
            "comparison": comparison_info,
            "rows": {r: f.height for r, f in frames_of[BASE_OF.get(main_target, main_target)].items()},
            "design_weighted_visits": int((visits["design_weight"] != 1.0).sum()),
            "plans": {t: p.to_dict() for t, p in plans.items()},
            "adverse_rate": {r: float(f["label"].mean() or 0.0)
                             for r, f in frames_of[BASE_OF.get(main_target, main_target)].items()},  # type: ignore[arg-type]
            "left_out": left_out,
            "skipped": skipped,
            "selection": selection_log,
            "chosen": {t: c.label() for t, c in chosen.items()},
            "grades_month": plans["inspection"].test[-1],  # the month the bands and grade shares are set on
            "bands": {"score_base_rate": base_rate, "band_edges": None if edges is None else list(edges),
                      "shares": dict(grade_shares) if grade_shares else None},
        },
    )

TARGET_TEXT = {
    "blend": "the chance that an inspection now, on a random visit by an average inspector, finds an "
             "adverse outcome; the weighted log-odds of the horizon and inspection targets' models "
             "(--blend-weight; by default the share of enterprise-months looked at within the horizon, "
             "0.2-0.8), calibrated on visits",
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
