"""Claim: ingesting a city of 2,000,000 enterprises and their events takes ≤ 2 min on 2 cores (issue 2).

Generates a synthetic city (or takes an existing source folder), then ingests it into a fresh lake
in a child process, ``--repeats`` times, and reports the median wall time, the peak RSS of the ingest
process, rows read per table, and a re-ingest of the same source into the filled lake (every row an
exact duplicate). Prints one JSON object to stdout.

    python benchmarks/ingest_throughput.py --enterprises 2000000 [--dirty 0.02] [--source DIR] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from riskengine.lake.ingest import ingest
t0 = time.perf_counter()
report = ingest(Path(sys.argv[1]), Path(sys.argv[2]))
seconds = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_rss_bytes": rss, "tables": report.tables}))
"""


def run_ingest(source: Path, lake: Path) -> dict:
    """One ingest in a fresh Python process (so peak RSS is the ingest's own)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(source), str(lake)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dirty", type=float, default=0.0)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--source", type=Path, help="ingest this folder instead of generating one")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the city and lakes")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ingest-bench-", dir=args.workdir))
    try:
        result: dict = {"claim": "ingest of 2M enterprises + events <= 120 s", "cpus": os.cpu_count()}
        source = args.source
        if source is None:
            from riskengine.synth import generate_city

            source = work / "city"
            t0 = time.perf_counter()
            summary = generate_city(source, n_enterprises=args.enterprises, seed=args.seed,
                                    fmt=args.format, dirty=args.dirty)
            result["generate_seconds"] = round(time.perf_counter() - t0, 2)
            result["events"] = summary.get("events")
        result.update(enterprises=args.enterprises if args.source is None else None, dirty=args.dirty,
                      format=args.format, source_bytes=sum(p.stat().st_size for p in source.glob("*.*")))
        runs = []
        for i in range(args.repeats):
            lake = work / f"lake{i}"
            runs.append(run_ingest(source, lake))
            if i < args.repeats - 1:
                shutil.rmtree(lake)
        again = run_ingest(source, work / f"lake{args.repeats - 1}")
        result["ingest_seconds_median"] = round(statistics.median(r["seconds"] for r in runs), 2)
        result["ingest_seconds_all"] = [round(r["seconds"], 2) for r in runs]
        result["ingest_peak_rss_gib"] = round(max(r["peak_rss_bytes"] for r in runs) / 2**30, 2)
        result["tables"] = runs[-1]["tables"]
        result["rows_read"] = sum(t["read"] for t in runs[-1]["tables"].values())
        result["rows_per_second"] = round(result["rows_read"] / result["ingest_seconds_median"])
        result["reingest_seconds"] = round(again["seconds"], 2)
        result["reingest_all_duplicates"] = all(
            t["accepted"] == 0 for t in again["tables"].values()
        )
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
