"""Grades on a generated city: the score follows the latent risk better than a weighted bad-event count.

Claim (issue 11): on a generated 30,000-enterprise city (any seed), trained as of D on what was known
before D, the Spearman correlation of the model's score with the latent risk of the next year (the
mean monthly p_fail over the horizon from each test snapshot, ``_truth/risk.parquet``) is at least
the weighted bad-event count's + 0.05, and the model's AUC on random (双随机) inspections is not lower
than today's. Two counts are reported: ``points_scorecard`` (models.baselines: penalties, failures,
complaints, recalls over 1 year, serious ones over 3) and ``points_scorecard_3y`` (the same points over
3 years for every kind: the issue's "weighted count of bad events in the last 3 years").

Generates the city, ingests it, builds the features once, then trains once per ``--target`` (each run
fits the other targets beside it and reports them as scorers ``lightgbm_<target>``; the blend fits
both and reports them). For each target and
each scorer it prints ``spearman_truth`` (population ``all``: every enterprise of the horizon test
snapshots), and AUC on the random inspections and on each enterprise's first inspection of the
inspection test months; the grade shares and realized rates by grade on those populations; the
configuration that rolling-origin validation chose; and seconds. ``spearman_all_recomputed`` ranks the
model's probability (the run's own ``spearman_truth`` ranks the rounded, clipped 0-1000 score) beside the
3-year count and the decayed severity index. The random visits are few (about 250 in the three test
months of a 30,000-enterprise city, 20-25 adverse), so their AUC moves by a few hundredths with the
training seed.

    nice python benchmarks/city_grades.py --enterprises 30000 --seed 2027 --as-of 2026-01-01 \
        [--target blend --target horizon] [--snapshots 12] [--workdir DIR]
        [--visit-window-months 1] [--inspection-snapshots N] [--blend-weight W|looked|choose]
        [--no-compare-targets]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features import compute_features
from models.baselines import PointsScorecard
from models.evaluate import spearman, truth_over_horizon
from models.labels import build_labels
from models.train import KEYS, TrainConfig, snapshot_dates, train_model
from models.train_config import TARGETS
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import load_policy
from riskengine.synth import generate_city, load_truth

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_args import add_target_options  # noqa: E402

MARGIN = 0.05  # the model's Spearman must beat the weighted bad-event count's by this much
BASELINE = "points_scorecard"  # the weighted count of bad events (models.baselines.PointsScorecard)
# The issue's own words are "a plain weighted count of bad events in the last 3 years": the same points
# over a 3-year look-back for every kind (PointsScorecard counts most kinds over 1 year only).
BASELINE_3Y = "points_scorecard_3y"
# "Today's" random-inspection AUC: the horizon-target model of main at 40f9b81 on this benchmark's
# default city (30,000 enterprises, seed 2027, as of 2026-01-01; 248 random visits, so about +-0.05).
TODAY_RANDOM_AUC = 0.748


def _finite(value: Any) -> float | None:
    return round(float(value), 4) if value is not None and math.isfinite(float(value)) else None


def _margin(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def _by_scorer(metrics: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per scorer: Spearman with the truth on ``all``, AUC per population, grades where it has them."""
    out: dict[str, dict[str, Any]] = {}
    for row in metrics.iter_rows(named=True):
        entry = out.setdefault(row["scorer"], {})
        population = row["population"]
        if population == "all":
            entry["spearman_truth"] = _finite(row.get("spearman_truth"))
        entry[f"auc_{population}"] = _finite(row["auc"])
        entry[f"n_{population}"] = int(row["n"])
        if row.get("rate_A") is not None and population in ("random", "inspected"):
            entry[f"rate_by_grade_{population}"] = {g: _finite(row.get(f"rate_{g}")) for g in "ABCD"}
            entry[f"share_by_grade_{population}"] = {g: _finite(row.get(f"share_{g}")) for g in "ABCD"}
            entry[f"rates_rise_{population}"] = bool(row.get("grades_monotone"))
    return out


def extra_spearman(tables: dict[str, pl.LazyFrame], day: date, truth: pl.DataFrame,
                   features: pl.DataFrame, result: Any) -> dict[str, float | None]:
    """Spearman with the truth on the same rows as population ``all`` (every enterprise of the horizon
    test snapshots), for scorers the run does not report: the 3-year weighted count, the decayed
    severity index (a model feature), and the model's probability (the reported figure ranks the
    rounded, clipped 0-1000 score)."""
    snaps = [date.fromisoformat(d) for d in result.info["plans"]["horizon"]["test"]]
    labels = build_labels(tables, snaps, known_before=day, horizon_days=result.config.horizon_days)
    rows = labels.select(*KEYS).collect().join(features.with_columns(pl.col("as_of").cast(pl.Date)),
                                               on=list(KEYS), how="inner")
    values = truth_over_horizon(truth, rows, result.config.horizon_days)
    known = np.isfinite(values)
    scores = {
        BASELINE_3Y: PointsScorecard(lookback_days=1095).fit(tables=tables).decision_function(rows),
        "severity_index": rows["severity__index"].fill_null(0.0).to_numpy().astype(float),
        "lightgbm_probability": result.model.predict_proba(rows),
        **{f"lightgbm_{t}_probability": m.predict_proba(rows) for t, m in result.target_models.items()},
    }
    out: dict[str, float | None] = {k: _finite(spearman(v[known], values[known])) for k, v in scores.items()}
    return out | {"rows": int(known.sum())}


def _config(args: argparse.Namespace, target: str = "horizon") -> TrainConfig:
    return TrainConfig(target=target, snapshots=args.snapshots, seed=args.seed, num_threads=args.threads,
                       compare_selection=False, compare_targets=not args.no_compare_targets,
                       visit_window_months=args.visit_window_months,
                       inspection_snapshots=args.inspection_snapshots, blend_weight=args.blend_weight)


def run_target(tables: dict[str, pl.LazyFrame], day: date, truth: pl.DataFrame, features: pl.DataFrame,
               target: str, args: argparse.Namespace) -> dict[str, Any]:
    config = _config(args, target)
    began = time.perf_counter()
    result = train_model(tables, day, truth=truth, config=config, features=features,
                         grade_shares=load_policy().grade_shares)
    scorers = _by_scorer(result.metrics)
    model, baseline = scorers["lightgbm"], scorers.get(BASELINE, {})
    rho, rho_base = model.get("spearman_truth"), baseline.get("spearman_truth")
    extra = extra_spearman(tables, day, truth, features, result)
    margin_3y = _margin(extra["lightgbm_probability"], extra[BASELINE_3Y])
    return {
        "target": target,
        "chosen": result.info["chosen"],
        "blend_weight_horizon": result.info["model"].get("weight_horizon"),
        "grade_shares_latest_month": dict(zip(result.grade_distribution["grade"].to_list(),
                                              [round(s, 4) for s in result.grade_distribution["share"]],
                                              strict=True)),
        "band_edges": result.info["bands"]["band_edges"],
        "scorers": scorers,
        "spearman_margin_over_points": None if rho is None or rho_base is None else round(rho - rho_base, 4),
        "meets_spearman_target": None if rho is None or rho_base is None else rho >= rho_base + MARGIN,
        "spearman_all_recomputed": extra,
        "spearman_margin_over_points_3y": margin_3y,
        "meets_spearman_target_3y": None if margin_3y is None else margin_3y >= MARGIN,
        "random_auc_vs_today": None if model.get("auc_random") is None
        else round(model["auc_random"] - args.today_random_auc, 4),
        "skipped": result.info["skipped"],
        "seconds": round(time.perf_counter() - began, 1),
        "timings_s": {k: round(v, 1) for k, v in result.timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--as-of", default="2026-01-01")
    parser.add_argument("--target", action="append", choices=TARGETS,
                        help="repeat for several; default: blend (its components are reported beside it)")
    parser.add_argument("--snapshots", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    add_target_options(parser)
    parser.add_argument("--no-compare-targets", action="store_true",
                        help="train only the --target model (faster; no lightgbm_<other> scorer)")
    parser.add_argument("--today-random-auc", type=float, default=TODAY_RANDOM_AUC,
                        help="random-inspection AUC to compare with (default: main's, default city)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the city and lake here (reused when already there); default: a temp dir")
    args = parser.parse_args(argv)
    day = date.fromisoformat(args.as_of)
    targets = args.target or ["blend"]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="city-grades-") as tmp:
        work = args.workdir or Path(tmp)
        city, lake = work / "city", work / "lake"
        if not (city / "_truth" / "summary.json").is_file():
            generate_city(city, n_enterprises=args.enterprises, seed=args.seed, fmt="parquet")
        if not lake.is_dir():
            ingest(city, lake)
        prepare_s = time.perf_counter() - began
        tables, truth = load_tables(lake), load_truth(city)
        clock = time.perf_counter()
        features = compute_features(tables, snapshot_dates(day, _config(args)))
        features_s = time.perf_counter() - clock
        runs = {t: run_target(tables, day, truth, features, t, args) for t in targets}
    out = {
        "claim": f"spearman(score, latent risk of the next year) >= {BASELINE}'s + {MARGIN}; "
                 "random-inspection AUC not lower than today's",
        "enterprises": args.enterprises,
        "seed": args.seed,
        "as_of": day.isoformat(),
        "truth": "mean monthly latent p_fail over [snapshot, snapshot + 365 d) "
                 "(models.evaluate.truth_over_horizon)",
        "runs": runs,
        "prepare_city_and_lake_s": round(prepare_s, 1),
        "features_s": round(features_s, 1),
        "seconds": round(time.perf_counter() - began, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    json.dump(out, sys.stdout, indent=1, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
