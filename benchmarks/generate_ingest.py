"""Claim (issue 2): generate + ingest a 2,000,000-enterprise city over 7 years on 2 cores:
generate <= 3 min, ingest <= 2 min, peak RSS <= 8 GiB each.

Each phase runs in its own child process; wall time is measured around it and the peak RSS is the
child's own (``os.wait4`` rusage, so one phase's memory never hides the other's). Event counts come
from the generator's summary and the ingest report. ``--repeats`` runs each phase that many times and
reports medians. Prints one JSON object to stdout.

    python benchmarks/generate_ingest.py [--enterprises 2000000] [--seed 42] [--format csv] [--repeats 1]
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

GENERATE = """
import json, sys
from pathlib import Path
from riskengine.synth import generate_city
summary = generate_city(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), fmt=sys.argv[4])
print(json.dumps(summary))
"""

INGEST = """
import json, sys
from pathlib import Path
from riskengine.lake.ingest import ingest
report = ingest(Path(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps({"tables": report.tables}))
"""

TARGETS = {"generate_seconds": 180, "ingest_seconds": 120, "peak_rss_gib": 8}


def run_measured(code: str, *args: str) -> tuple[float, int, dict]:
    """Run ``code`` in a fresh interpreter, reaped with ``os.wait4`` to read its own peak RSS.

    Returns (wall seconds, peak RSS bytes, the JSON object the child printed last).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"child failed ({proc.returncode}):\n{err.read()[-4000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    return seconds, usage.ru_maxrss * 1024, result  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the city and lake")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="generate-ingest-", dir=args.workdir))
    claim = "generate <= 180 s, ingest <= 120 s, peak RSS <= 8 GiB (2M enterprises, 7 years)"
    result: dict = {"claim": claim,
                    "enterprises": args.enterprises, "seed": args.seed, "format": args.format,
                    "cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    try:
        gen_times, gen_rss, ing_times, ing_rss = [], [], [], []
        summary: dict = {}
        ingest_tables: dict | None = None
        for i in range(args.repeats):
            source, lake = work / f"city{i}", work / f"lake{i}"
            seconds, rss, summary = run_measured(GENERATE, str(source), str(args.enterprises),
                                                 str(args.seed), args.format)
            gen_times.append(seconds)
            gen_rss.append(rss)
            try:
                import riskengine.lake.ingest  # noqa: F401
            except ImportError:
                result["ingest"] = "riskengine.lake.ingest not available: generate measured only"
            else:
                seconds, rss, report = run_measured(INGEST, str(source), str(lake))
                ing_times.append(seconds)
                ing_rss.append(rss)
                ingest_tables = report["tables"]
            result["source_bytes"] = sum(p.stat().st_size for p in source.glob("*.*"))
            result["truth_bytes"] = (source / "_truth" / "risk.parquet").stat().st_size
            shutil.rmtree(source)
            shutil.rmtree(lake, ignore_errors=True)
        gib = 1024**3
        result["generate"] = {"seconds_median": round(statistics.median(gen_times), 2),
                              "seconds": [round(s, 2) for s in gen_times],
                              "peak_rss_gib": round(max(gen_rss) / gib, 3)}
        result["events"] = summary["events"]
        result["events_total"] = sum(summary["events"].values())
        result["truth_rows"] = summary["truth_rows"]
        if ing_times:
            result["ingest"] = {"seconds_median": round(statistics.median(ing_times), 2),
                                "seconds": [round(s, 2) for s in ing_times],
                                "peak_rss_gib": round(max(ing_rss) / gib, 3), "tables": ingest_tables}
        result["load_average_after"] = os.getloadavg()
        gen_ok = (result["generate"]["seconds_median"] <= TARGETS["generate_seconds"]
                  and result["generate"]["peak_rss_gib"] <= TARGETS["peak_rss_gib"])
        result["generate_meets_target"] = gen_ok
        if ing_times:
            result["ingest_meets_target"] = (result["ingest"]["seconds_median"] <= TARGETS["ingest_seconds"]
                                             and result["ingest"]["peak_rss_gib"] <= TARGETS["peak_rss_gib"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
