"""Claim (issue 3): on the same windowed aggregates for the same cutoffs, ``build_features`` gives the
values featuretools' deep feature synthesis gives (cutoff times + a 365-day training window), and is
>= 50x faster.

Run:  python benchmarks/features_vs_featuretools.py [--enterprises 5000] [--dates 12] [--seed 7]
      [--repeats 3]
Prints one JSON object. featuretools needs pandas < 3, so it runs in its own venv
(``~/.cache/riskengine-bench/ft-venv``, created on first use with ``pip install featuretools 'pandas<3'
pyarrow``) as a subprocess that reads the same tables from Parquet.

Matching the time rule: featuretools uses data with time index <= cutoff and, with a training window
w, > cutoff - w. Our as_of D uses event dates in [D - 365, D - 1]. So the cutoff is D - 1 day and
the window 365 days. ``recorded_on`` is dropped from the compared tables (featuretools has no
"known from" date per record). featuretools is timed for ``calculate_feature_matrix`` of the compared
features only; our side twice: the full feature set (``compute_features``, 95 columns) and the same 8
aggregates computed the way the pipeline computes every family (ids encoded once, the time helper
``features.asof.window``, a group-by per table, the sorted-merge alignment, the same engine rule),
checked equal to the full pipeline's columns. Both of our timings include reading and encoding the
tables; featuretools' excludes building its EntitySet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _features_city import CACHE  # noqa: E402

FT_VENV = CACHE / "ft-venv"

# featuretools feature name -> our column
COMPARED = {
    "COUNT(inspections)": "inspections__count_365d",
    "SUM(inspections.findings_minor)": "inspections__findings_minor_365d",
    "MEAN(inspections.is_fail)": "inspections__fail_rate_365d",
    "COUNT(sampling_tests)": "sampling__tests_365d",
    "MEAN(sampling_tests.is_fail)": "sampling__fail_rate_365d",
    "COUNT(complaints)": "complaints__count_365d",
    "COUNT(recalls)": "recalls__count_365d",
    "SUM(recalls.units)": "recalls__units_365d",
}

FT_CHILD = r"""
import json, sys, time
import featuretools as ft
import pandas as pd
from woodwork.logical_types import Double, Datetime, Categorical

folder = sys.argv[1]
repeats = int(sys.argv[2])
names = json.loads(sys.argv[3])
read = lambda t: pd.read_parquet(f"{folder}/{t}.parquet")
es = ft.EntitySet("city")
es.add_dataframe(dataframe_name="enterprises", dataframe=read("enterprises"), index="enterprise_id")
specs = {
    "inspections": ("inspection_id", "inspected_on", {"findings_minor": Double, "is_fail": Double}),
    "sampling_tests": ("test_id", "sampled_on", {"is_fail": Double}),
    "complaints": ("complaint_id", "received_on", {}),
    "recalls": ("recall_id", "announced_on", {"units": Double}),
}
for name, (index, time_index, types) in specs.items():
    df = read(name)
    types = dict(types, enterprise_id=Categorical)
    es.add_dataframe(dataframe_name=name, dataframe=df, index=index, time_index=time_index,
                     logical_types=types)
    es.add_relationship("enterprises", "enterprise_id", name, "enterprise_id")
defs = ft.dfs(entityset=es, target_dataframe_name="enterprises", agg_primitives=["count", "sum", "mean"],
              trans_primitives=[], max_depth=1, features_only=True)
defs = [f for f in defs if f.get_name() in names]
cutoff = read("cutoffs")
walls = []
for _ in range(repeats):
    start = time.perf_counter()
    fm = ft.calculate_feature_matrix(features=defs, entityset=es, cutoff_time=cutoff,
                                     training_window="365 days", cutoff_time_in_index=True)
    walls.append(time.perf_counter() - start)
fm = fm.reset_index()
fm.columns = [str(c) for c in fm.columns]
fm.to_parquet(f"{folder}/ft_out.parquet")
print(json.dumps({"walls": walls, "features": [f.get_name() for f in defs], "version": ft.__version__}))
"""


def same_aggregates(lazy: dict[str, pl.LazyFrame], dates: list[date]) -> pl.LazyFrame:
    """Only the compared aggregates, computed the way ``build_features`` computes every family: the
    enterprise ids encoded once, the pipeline's time helper (``features.asof.window``), one group-by per
    table, each aligned with the population by the pipeline's sorted merge."""
    from features import asof
    from features.build import _ID, _JK, _align, _conform, _encode, _join_key
    from features.exprs import count_if, ratio, sum_if

    t = _encode(_conform(lazy))
    population = asof.population(t["enterprises"].select("enterprise_id", _ID, "established_on"),
                                 asof.as_of_frame(dates))
    slots = population.select(_join_key()).set_sorted(_JK)
    ids = ["enterprise_id", "as_of"]
    fail_i, fail_s = pl.col("outcome") == "fail", pl.col("result") == "fail"
    aggs = {
        ("inspections", "inspected_on"): [
            pl.len().alias("inspections__count_365d"),
            sum_if(pl.lit(True), pl.col("findings_minor")).alias("inspections__findings_minor_365d"),
            ratio(count_if(fail_i), pl.len()).alias("inspections__fail_rate_365d"),
        ],
        ("sampling_tests", "sampled_on"): [
            pl.len().alias("sampling__tests_365d"),
            ratio(count_if(fail_s), pl.len()).alias("sampling__fail_rate_365d"),
        ],
        ("complaints", "received_on"): [pl.len().alias("complaints__count_365d")],
        ("recalls", "announced_on"): [
            pl.len().alias("recalls__count_365d"),
            sum_if(pl.lit(True), pl.col("units")).alias("recalls__units_365d"),
        ],
    }
    parts = [
        _align(slots, asof.window(t[table], day, dates, 365).group_by(ids).agg(exprs))
        for (table, day), exprs in aggs.items()
    ]
    keys = population.select(pl.col(_ID).alias("enterprise_id"), "as_of")
    return pl.concat([keys, *parts], how="horizontal")


def ensure_venv() -> Path:
    """The featuretools venv's python (created on first use)."""
    python = FT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(FT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "featuretools", "pandas<3", "pyarrow"], check=True
        )
    return python


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=5000)
    ap.add_argument("--dates", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from features import compute_features
    from features.build import IN_MEMORY_BELOW
    from riskengine.synth import generate_tables

    tables = {
        k: v.with_columns(pl.lit(None, pl.Date).alias("recorded_on")) if "recorded_on" in v.columns else v
        for k, v in generate_tables(args.enterprises, args.seed).items()
    }
    dates = [date(2024 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(7, 7 + args.dates)]
    lazy = {k: v.lazy() for k, v in tables.items()}

    walls = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = compute_features(lazy, dates)
        walls.append(time.perf_counter() - start)
    engine = "in-memory" if ours.height < IN_MEMORY_BELOW else "streaming"
    like_walls = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        # The same engine rule as compute_features (by the number of rows it produces).
        like = same_aggregates(lazy, dates).collect(engine=engine)
        like_walls.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tables["enterprises"].select("enterprise_id").write_parquet(folder / "enterprises.parquet")
        fail = (pl.col("result") if "result" in tables["sampling_tests"].columns else pl.lit(None)) == "fail"
        tables["inspections"].select(
            "inspection_id",
            "enterprise_id",
            pl.col("inspected_on").cast(pl.Datetime("ns")),
            pl.col("findings_minor").cast(pl.Float64),
            (pl.col("outcome") == "fail").cast(pl.Float64).alias("is_fail"),
        ).write_parquet(folder / "inspections.parquet")
        tables["sampling_tests"].select(
            "test_id",
            "enterprise_id",
            pl.col("sampled_on").cast(pl.Datetime("ns")),
            fail.cast(pl.Float64).alias("is_fail"),
        ).write_parquet(folder / "sampling_tests.parquet")
        tables["complaints"].select(
            "complaint_id", "enterprise_id", pl.col("received_on").cast(pl.Datetime("ns"))
        ).write_parquet(folder / "complaints.parquet")
        tables["recalls"].select(
            "recall_id",
            "enterprise_id",
            pl.col("announced_on").cast(pl.Datetime("ns")),
            pl.col("units").cast(pl.Float64),
        ).write_parquet(folder / "recalls.parquet")
        # One cutoff per (enterprise, as_of) row we produce: the day before as_of (featuretools is inclusive).
        ours.select(
            "enterprise_id", (pl.col("as_of") - timedelta(days=1)).cast(pl.Datetime("ns")).alias("time")
        ).write_parquet(folder / "cutoffs.parquet")
        run = subprocess.run(
            [str(ensure_venv()), "-c", FT_CHILD, str(folder), str(args.repeats), json.dumps(list(COMPARED))],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise SystemExit(f"featuretools run failed:\n{run.stderr[-3000:]}")
        ft_info = json.loads(run.stdout.strip().splitlines()[-1])
        theirs = pl.read_parquet(folder / "ft_out.parquet")

    theirs = theirs.with_columns((pl.col("time").cast(pl.Date) + timedelta(days=1)).alias("as_of")).drop(
        "time"
    )
    both = ours.select("enterprise_id", "as_of", *COMPARED.values()).join(
        theirs, on=["enterprise_id", "as_of"], how="full", coalesce=True
    )
    mismatched = {}
    for ft_name, col in COMPARED.items():
        a = both[col].cast(pl.Float64)
        b = both[ft_name].cast(pl.Float64).fill_nan(None) if ft_name in both.columns else None
        if b is None:
            mismatched[col] = "missing in featuretools output"
            continue
        same = ((a - b).abs() <= 1e-9 * (1 + b.abs())) | (a.is_null() & b.is_null())
        bad = int((~same.fill_null(False)).sum())
        if bad:
            mismatched[col] = bad
    ours_s = statistics.median(walls)
    like_s = statistics.median(like_walls)
    # The like-for-like run must give the same values as the full pipeline on the compared columns.
    keys = ["enterprise_id", "as_of"]
    cols = list(COMPARED.values())
    counts = [c for c in cols if not c.endswith("rate_365d")]
    like_vals = like.select(*keys, *cols).with_columns([pl.col(c).fill_null(0) for c in counts])
    ours_vals = ours.select(*keys, *cols)
    like_vals = like_vals.with_columns([pl.col(c).cast(pl.Float64) for c in cols])
    ours_vals = ours_vals.with_columns([pl.col(c).cast(pl.Float64) for c in cols])
    if not like_vals.equals(ours_vals):
        raise SystemExit("the like-for-like aggregates differ from compute_features")
    ft_s = statistics.median(ft_info["walls"])
    print(
        json.dumps(
            {
                "claim": "same windowed aggregates as featuretools DFS (cutoffs, 365-day window), >= 50x",
                "enterprises": args.enterprises,
                "as_of_dates": len(dates),
                "rows": ours.height,
                "rows_featuretools": theirs.height,
                "compared_features": list(COMPARED.values()),
                "values_compared": ours.height * len(COMPARED),
                "mismatched": mismatched,
                "identical": not mismatched and ours.height == theirs.height,
                "riskengine_s_median_full_feature_set": round(ours_s, 3),
                "riskengine_columns": ours.width - 2,
                "riskengine_s_median_compared_only": round(like_s, 3),
                "featuretools_s_median_compared_only": round(ft_s, 3),
                "featuretools_version": ft_info["version"],
                "speed_ratio_compared_only": round(ft_s / like_s, 1),
                "speed_ratio_vs_full_feature_set": round(ft_s / ours_s, 1),
                "target_met": ft_s / like_s >= 50,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
