"""Shared by the ``features_*`` benchmarks: a cached synthetic city lake and measured child runs.

The city comes from ``riskengine.synth.generate_tables`` (7 years, 2019-2025) and is written once as a
lake (``<table>/part-0.parquet``) under ``~/.cache/riskengine-bench/city-<n>-<seed>/``, then reused.
Every measurement runs in a fresh Python process so that its peak RSS is its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("RISKENGINE_BENCH_CACHE", Path.home() / ".cache" / "riskengine-bench"))


def city_lake(n_enterprises: int, seed: int) -> Path:
    """The lake of a generated city (generated on first use; written atomically by renaming a folder)."""
    lake = CACHE / f"city-{n_enterprises}-{seed}"
    if (lake / "enterprises").is_dir():
        return lake
    from riskengine.synth import generate_tables

    tmp = CACHE / f".city-{n_enterprises}-{seed}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for name, frame in generate_tables(n_enterprises, seed).items():
        (tmp / name).mkdir(parents=True)
        frame.write_parquet(tmp / name / "part-0.parquet")
    os.replace(tmp, lake)
    return lake


CHILD = r"""
import json, resource, sys, time
from datetime import date
from pathlib import Path
import polars as pl
from riskengine.lake.layout import load_tables, scan_table
from riskengine.core.contract import TABLES

kind, lake, dates = sys.argv[1], Path(sys.argv[2]), [date.fromisoformat(d) for d in sys.argv[3].split(",")]
def cpu_now():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

cpu_start = cpu_now()
start = time.perf_counter()
if kind == "features":
    from features import compute_features
    frame = compute_features(load_tables(lake), dates)
    shape = list(frame.shape)
else:  # the floor: scan every event table and count rows per enterprise
    events = [t for t, spec in TABLES.items() if "enterprise_id" in spec.schema and t != "enterprises"]
    frames = pl.collect_all([scan_table(lake, t).group_by("enterprise_id").agg(pl.len()) for t in events])
    shape = [sum(f.height for f in frames), len(frames)]
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
rss = usage.ru_maxrss * 1024  # Linux reports KiB
cpu = cpu_now() - cpu_start  # user + system CPU seconds of the measured work (all threads)
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": rss, "shape": shape}))
"""


def measure(kind: str, lake: Path, dates: list[str]) -> dict:
    """Run ``features`` or ``floor`` in a fresh process; its wall time, peak RSS and output shape."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(lake), ",".join(dates)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_average() -> float:
    return os.getloadavg()[0]
