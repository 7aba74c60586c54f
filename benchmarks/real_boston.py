"""Grades on real records: Boston's restaurant inspections, the way a new bureau would use the engine.

Claim (issue 11, README "Real data"): ingested with ``benchmarks/mappings/boston.toml`` and trained
as of D = 2014-01-01 on what was known before D, the model ranks the restaurants inspected in the
six months from D by whether their first inspection there found a severe violation at AUC >= 0.68,
above the share of past inspections with a severe violation (0.662); its grades hold no more than
60 % each, D at most 25 %, each at least 2 %, and the rate of severe findings rises A < B < C < D.

    python benchmarks/real_boston.py [--data /work/shared/data/boston] [--as-of 2014-01-01]
        [--snapshots 24] [--target blend|horizon|inspection] [--seed 42] [--inspection-snapshots N]
        [--blend-weight W|looked|choose]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features import compute_features
from models.baselines import ShareOfPast
from models.evaluate import auc, rate_by_grade, rates_rise_strictly
from models.grading import grade_from_score, score_from_probability
from models.train import TrainConfig, train_model
from models.train_config import TARGETS
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import load_tables
from riskengine.lake.mapping import apply_mapping
from riskengine.supervision.policy import load_policy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_args import add_target_options  # noqa: E402

MAPPING = Path(__file__).parent / "mappings" / "boston.toml"


def first_inspections(tables: dict, day: date, window_days: int) -> pl.DataFrame:
    """Each restaurant inspected in [D, D + window): whether its first inspection there was severe."""
    insp = tables["inspections"].filter(
        (pl.col("inspected_on") >= day) & (pl.col("inspected_on") < day + timedelta(days=window_days))
    ).collect()
    first = insp.sort("inspected_on", "inspection_id").group_by("enterprise_id", maintain_order=True).first()
    return first.select("enterprise_id", (pl.col("findings_critical") > 0).alias("y"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/boston"))
    parser.add_argument("--as-of", default="2014-01-01")
    parser.add_argument("--snapshots", type=int, default=24)
    parser.add_argument("--target", default="blend", choices=TARGETS)
    parser.add_argument("--window-days", type=int, default=183)
    parser.add_argument("--seed", type=int, default=42, help="the training seed (bagging, calibration)")
    add_target_options(parser)
    args = parser.parse_args()
    day = date.fromisoformat(args.as_of)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="real-boston-") as tmp:
        mapped, lake = Path(tmp) / "source", Path(tmp) / "lake"
        apply_mapping(args.data, MAPPING, mapped)
        ingest(mapped, lake, "any")
        tables = load_tables(lake)
        shares = load_policy().grade_shares
        config = TrainConfig(snapshots=args.snapshots, target=args.target, compare_selection=False,
                             seed=args.seed, inspection_snapshots=args.inspection_snapshots,
                             blend_weight=args.blend_weight, visit_window_months=args.visit_window_months)
        result = train_model(tables, day, config=config, grade_shares=shares)
        model = result.model
        truth = first_inspections(tables, day, args.window_days)
        features = compute_features(tables, [day])
        rows = features.join(truth, on="enterprise_id", how="inner")
        y = rows["y"].to_numpy().astype(int)
        p = model.predict_proba(rows)
        base, edges = model.metadata["score_base_rate"], model.metadata["band_edges"]
        grades = np.asarray(grade_from_score(score_from_probability(p, base_rate=base), edges), dtype=str)
        everyone = np.asarray(grade_from_score(score_from_probability(model.predict_proba(features),
                                                                      base_rate=base), edges), dtype=str)
        rates = rate_by_grade(y, grades)
        share_rows = rows.select("enterprise_id").with_columns(pl.lit(day).alias("as_of"))
        share = ShareOfPast().fit(tables=tables).decision_function(share_rows)
        out = {
            "as_of": day.isoformat(),
            "restaurants_evaluated": int(rows.height),
            "severe_share": float(y.mean()),
            "target": args.target,
            "seed": args.seed,
            "chosen": result.info["chosen"],
            "blend_weight_horizon": result.info["model"].get("weight_horizon"),
            "inspection_months": sum(len(result.info["plans"]["inspection"][r])
                                     for r in ("train", "valid", "calib")),
            "auc": {
                "model": auc(y, p),
                "share_of_past_baseline": auc(y, share),
                "readme_share_of_past": 0.662,
            },
            "grade_shares_all_restaurants": {g: float((everyone == g).mean()) for g in "ABCD"},
            "grade_shares_evaluated": {g: float((grades == g).mean()) for g in "ABCD"},
            "severe_rate_per_grade": {r["grade"]: r["rate"] for r in rates.iter_rows(named=True)},
            "rates_rise_A_to_D": rates_rise_strictly(rates),
            "band_edges": edges,
            "score_base_rate": base,
            "backtest": result.metrics.filter(pl.col("population") == "inspected")
            .select("scorer", "auc", "days_earlier", "hits_per_100", "hits_per_100_all").to_dicts(),
            "left_out": sorted({n.split("__")[0] for n in result.info["left_out"]}),
            "features_used": model.feature_names,
            "skipped": result.info["skipped"],
            "seconds": round(time.perf_counter() - began, 1),
        }
    json.dump(out, sys.stdout, indent=1, default=str)
    print()


if __name__ == "__main__":
    main()
