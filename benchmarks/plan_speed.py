"""Claim: the monthly plan of a 200,000-enterprise city (13 districts) is made in ≤ 30 s on 2 cores,
and its cost grows about linearly with the number of enterprises.

Builds an in-memory grades frame and a year of inspection and complaint history (about 0.3 inspections
per enterprise a year), then times ``make_plan`` (median of ``--repeats``) at ``--enterprises`` and at
a tenth of it in the same run, and the writing of the plan as .xlsx and .csv. Prints one JSON object.

    python benchmarks/plan_speed.py --enterprises 200000 [--capacity 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from riskengine.core.contract import DISTRICT_NAMES, TABLES
from riskengine.supervision.plan import make_plan
from riskengine.supervision.policy import load_policy
from riskengine.workflows.planning import write_plan_files

AS_OF = date(2025, 6, 1)
SECTORS = ["retail", "catering", "services", "wholesale", "manufacturing", "wire_cable", "fire_products",
           "food_related", "food_production", "construction_materials", "accommodation"]


def city(n: int, seed: int) -> tuple[pl.DataFrame, dict[str, pl.LazyFrame]]:
    """Grades and lake-like tables for ``n`` enterprises."""
    rng = np.random.default_rng(seed)
    districts = np.array(sorted(DISTRICT_NAMES))
    ids = np.char.add("E", np.arange(n).astype(str))
    grades = pl.DataFrame({
        "enterprise_id": ids, "name": ids, "district": rng.choice(districts, n),
        "sector": rng.choice(SECTORS, n, p=[0.3, 0.15, 0.2, 0.1, 0.1, 0.02, 0.02, 0.03, 0.03, 0.03, 0.02]),
        "grade": rng.choice(list("ABCD"), n, p=[0.5, 0.3, 0.15, 0.05]),
        "score": rng.integers(0, 1000, n),
    })
    k = int(0.3 * n)
    start = AS_OF - timedelta(days=365)
    days = [start + timedelta(days=int(d)) for d in rng.integers(0, 365, k)]
    inspections = pl.DataFrame({
        "inspection_id": np.char.add("I", np.arange(k).astype(str)), "enterprise_id": rng.choice(ids, k),
        "inspected_on": days, "kind": ["random"] * k,
        "inspector_id": np.char.add("P", rng.integers(0, 400, k).astype(str)),
        "outcome": rng.choice(["pass", "conditional", "fail"], k, p=[0.85, 0.1, 0.05]),
    })
    c = int(0.05 * n)
    complaints = pl.DataFrame({
        "complaint_id": np.char.add("C", np.arange(c).astype(str)), "enterprise_id": rng.choice(ids, c),
        "received_on": [start + timedelta(days=int(d)) for d in rng.integers(0, 365, c)],
    })
    tables = {
        "inspections": pl.concat([pl.DataFrame(schema=TABLES["inspections"].schema), inspections],
                                 how="diagonal_relaxed").lazy(),
        "complaints": pl.concat([pl.DataFrame(schema=TABLES["complaints"].schema), complaints],
                                how="diagonal_relaxed").lazy(),
    }
    return grades, tables


def timed(fn, repeats: int) -> tuple[float, object]:  # noqa: ANN001
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=200_000)
    parser.add_argument("--capacity", type=int, default=300, help="inspections per district")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    policy = load_policy(None)
    result: dict = {"claim": "plan of a 200,000-enterprise city <= 30 s; about linear in enterprises",
                    "cpus": os.cpu_count(), "enterprises": args.enterprises,
                    "capacity_per_district": args.capacity,
                    "repeats": args.repeats}
    small_n = max(args.enterprises // 10, 1000)
    for label, n in (("small", small_n), ("full", args.enterprises)):
        grades, tables = city(n, args.seed)
        seconds, plan = timed(lambda g=grades, t=tables: make_plan(g, t, AS_OF, args.capacity, 7, policy),
                              args.repeats)
        result[f"{label}_enterprises"] = n
        result[f"{label}_make_plan_seconds_median"] = round(seconds, 3)
    result["seconds_ratio_full_vs_small"] = round(result["full_make_plan_seconds_median"]
                                                  / result["small_make_plan_seconds_median"], 2)
    result["size_ratio_full_vs_small"] = round(args.enterprises / small_n, 2)
    result["scheduled"] = plan.scheduled.height  # type: ignore[attr-defined]
    result["listed"] = plan.plan.height  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as folder:
        for suffix in ("xlsx", "csv"):
            out = Path(folder) / f"plan.{suffix}"
            seconds, _ = timed(lambda o=out: write_plan_files(plan, o), args.repeats)  # type: ignore[arg-type]
            result[f"write_{suffix}_seconds_median"] = round(seconds, 3)
    result["target_met"] = result["full_make_plan_seconds_median"] <= 30.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
