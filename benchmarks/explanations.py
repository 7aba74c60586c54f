"""Claims of issue 18 on a generated city (quality, not speed; sizes as arguments):

1. For enterprises with an adverse record in the last year (``severity__adverse_365d`` > 0), the share
   whose first reason is an own-record reason backed by lake records (target ≥ 90 %).
2. The policy's baseline cap (``[baseline_cap]`` in the policy file): how many grades it lowers and
   its effect on the backtest — the adverse rate per grade in the year after the as_of date, with and
   without the cap, and the adverse rate of the capped enterprises themselves.

Steps: generate a city (``--enterprises``, ``--seed``), ingest it, train a model on what was known
before ``--as-of`` (default 2024-07-01), grade as of that day with and without the cap, and label the
year [as_of, as_of + 365 days) from the lake (known before ``--known-before``, default 2025-07-01).

Prints one JSON object to stdout.

    python benchmarks/explanations.py --enterprises 3000 --seed 11
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date
from pathlib import Path

import polars as pl

from features import compute_features
from models.evaluate import rate_by_grade, rates_rise_strictly
from models.labels import build_labels
from models.scoring import add_rule_columns, score_features
from models.train import TrainConfig, train_model
from riskengine.core.config import Settings
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import load_policy
from riskengine.synth.city import generate_city
from riskengine.workflows.evidence import evidence


def first_reason_share(grades: pl.DataFrame, features: pl.DataFrame, found: pl.DataFrame) -> dict:
    adverse = features.filter(pl.col("severity__adverse_365d") > 0).select("enterprise_id")
    first = (grades.join(adverse, on="enterprise_id", how="semi")
             .select("enterprise_id", pl.col("reasons").list.first().struct.field("code").alias("reason")))
    backed = first.join(found.select("enterprise_id", "reason").unique(), on=["enterprise_id", "reason"],
                        how="semi")
    return {"enterprises_with_adverse_record_last_year": first.height,
            "first_reason_own_record_with_evidence": backed.height,
            "share": round(backed.height / first.height, 4) if first.height else None}


def backtest(grades: pl.DataFrame, labels: pl.DataFrame) -> dict:
    joined = grades.join(labels.select("enterprise_id", "label"), on="enterprise_id", how="left")
    joined = joined.with_columns(pl.col("label").fill_null(False))
    rates = rate_by_grade(joined["label"].cast(pl.Int8).to_numpy(), joined["grade"].to_numpy())
    return {"by_grade": {r["grade"]: {"n": r["n"], "adverse": int(r["adverse"]),
                                      "rate": None if r["rate"] is None else round(r["rate"], 4)}
                         for r in rates.iter_rows(named=True)},
            "rates_rise_a_to_d": rates_rise_strictly(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2024, 7, 1))
    parser.add_argument("--known-before", type=date.fromisoformat, default=date(2025, 7, 1))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_city(root / "src", n_enterprises=args.enterprises, seed=args.seed)
        ingest(root / "src", root / "lake")
        tables = load_tables(root / "lake")
        config = TrainConfig(snapshots=6, test_snapshots=1, max_rounds=200, baselines=False,
                             compare_selection=False, num_threads=2)
        model = train_model(tables, args.as_of, config=config).model
        settings = Settings(home=root)
        features = add_rule_columns(compute_features(tables, [args.as_of]), tables)
        features = features.join(
            tables["enterprises"].filter(pl.col("status") == "active").select("enterprise_id").collect(),
            on="enterprise_id", how="semi")
        cap = load_policy().baseline_cap
        capped = score_features(model, features, settings=settings, tables=tables, baseline_cap=cap)
        uncapped = score_features(model, features, settings=settings, tables=tables, baseline_cap=None)
        labels = build_labels(tables, [args.as_of], known_before=args.known_before).collect()
        found = evidence(tables, args.as_of)
        lowered = capped.filter(pl.col("rule") == "BASELINE_CAP").select("enterprise_id")
        lowered_labels = labels.join(lowered, on="enterprise_id", how="semi")
        driven = capped.filter(pl.col("reasons").list.eval(
            pl.element().struct.field("text_zh").str.contains("本等级主要由此决定")).list.any())
        out = {
            "enterprises": args.enterprises, "seed": args.seed, "as_of": args.as_of.isoformat(),
            "graded": capped.height, "model_version": str(model.version),
            "first_reason": first_reason_share(capped, features, found),
            "baseline_driven_grades": driven.height,
            "baseline_cap": {
                "max_grade": cap,
                "grades_lowered": lowered.height,
                "lowered_from": uncapped.join(lowered, on="enterprise_id", how="semi")["grade"]
                .value_counts().sort("grade").rows(),
                "adverse_rate_of_lowered": (round(float(lowered_labels["label"].mean()), 4)
                                            if lowered_labels.height else None),
                "backtest_with_cap": backtest(capped, labels),
                "backtest_without_cap": backtest(uncapped, labels),
            },
        }
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
