"""Claim: grading on Dask (``score --cluster local:W``) gives the single process's grades with memory
bounded per worker by the part size, not the city size (issue 16, CONTRACT §8).

Steps (inputs cached under ``--cache``, default ``~/.cache/riskengine-bench/cluster``):

1. a bucketed lake of ``--enterprises`` generated enterprises, generated in ``--generate-parts``
   cities of equal size (other seeds) so that generation fits in memory, each ingested into the same
   lake laid out in ``--buckets`` buckets (``--buckets 0``: a lake in plain files, which the cluster
   splits in ``--partitions`` parts, 0 for its size rule);
2. a model trained on a small generated city (``--train-enterprises``);
3. in fresh child processes, ``--repeats`` times each: the single-process ``score_enterprises``
   (skipped with ``--no-single``, e.g. for a city one process cannot hold) and
   ``score_on_cluster`` on a LocalCluster of ``--workers`` worker processes (``--memory-limit`` each):
   wall time and peak RSS of the client and of every worker;
4. whether both grades files are equal (rows, order and every value).

Prints one JSON object to stdout (medians over the repeats).

    python benchmarks/cluster_scale.py --enterprises 2000000 --workers 2 [--buckets 16]
    python benchmarks/cluster_scale.py --enterprises 10000000 --generate-parts 5 --no-single \\
        --memory-limit 8GiB --buckets 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

SINGLE = """
import json, sys, time
from datetime import date
from pathlib import Path
from models.artifact import CreditModel
from riskengine.core.config import Settings
from riskengine.workflows.cluster import peak_rss
from riskengine.workflows.scoring import score_enterprises, write_grades
lake, model_dir, out, as_of, home = sys.argv[1:6]
model = CreditModel.load(Path(model_dir))
t0 = time.perf_counter()
grades = score_enterprises(Path(lake), date.fromisoformat(as_of), model=model, settings=Settings(home=home))
write_grades(grades, Path(out))
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": grades.height,
                  "peak_rss_bytes": peak_rss()}))
"""

CLUSTER = """
import json, sys, time
from datetime import date
from pathlib import Path
from dask.distributed import Client, LocalCluster
from models.artifact import CreditModel
from riskengine.core.config import Settings
from riskengine.workflows.cluster import peak_rss, score_on_cluster
if __name__ == "__main__":
    lake, model_dir, out, as_of, home, workers, memory, partitions = sys.argv[1:9]
    model = CreditModel.load(Path(model_dir))
    t0 = time.perf_counter()
    with LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                      memory_limit=memory, dashboard_address=None) as cluster, Client(cluster) as client:
        started = time.perf_counter() - t0
        report = score_on_cluster(client, Path(lake), date.fromisoformat(as_of), Path(out), model,
                                  Settings(home=home), partitions=int(partitions) or None)
    print(json.dumps({"seconds": time.perf_counter() - t0, "cluster_start_seconds": started,
                      "rows": report.rows, "parts": report.parts,
                      "peak_rss_per_worker_bytes": sorted(report.peak_rss_per_worker.values()),
                      "client_peak_rss_bytes": peak_rss()}))
"""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_lake(cache: Path, n: int, parts: int, buckets: int, seed: int) -> Path:
    from riskengine.lake.ingest import ingest
    from riskengine.synth import generate_city

    lake = cache / f"lake_{n}_{parts}p_{buckets}b_{seed}"
    if (lake / "_done").exists():
        return lake
    import shutil

    shutil.rmtree(lake, ignore_errors=True)
    each = -(-n // parts)
    for k in range(parts):
        city = cache / f"city_{n}_{k}_{seed}"
        if not (city / "enterprises.csv").exists():
            _log(f"generating part {k + 1}/{parts} ({each:,} enterprises) …")
            generate_city(city, n_enterprises=each, seed=seed + 1000 * k, fmt="parquet")
        _log(f"ingesting part {k + 1}/{parts} into {buckets or 'no'} buckets …")
        ingest(city, lake, n_buckets=buckets or None)
        shutil.rmtree(city, ignore_errors=True)
    (lake / "_done").touch()
    return lake


def prepare_model(cache: Path, n: int, seed: int, as_of: date) -> Path:
    folder = cache / f"model_{n}_{seed}_{as_of}"
    if (folder / "model.json").exists():
        return folder
    from models.train import TrainConfig, train_model
    from riskengine.synth import generate_tables

    _log(f"training a model on a generated city of {n:,} enterprises …")
    tables = {k: v.lazy() for k, v in generate_tables(n, seed).items()}
    result = train_model(tables, as_of, config=TrainConfig(baselines=False, compare_selection=False))
    result.model.save(folder)
    return folder


def _child(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=os.environ.copy())
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--enterprises", type=int, default=200_000)
    p.add_argument("--generate-parts", type=int, default=1)
    p.add_argument("--buckets", type=int, default=16, help="0: a lake in plain files")
    p.add_argument("--partitions", type=int, default=0, help="parts of a lake in plain files (0: by size)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="8GiB")
    p.add_argument("--train-enterprises", type=int, default=5_000)
    p.add_argument("--as-of", default="2025-07-01")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--no-single", action="store_true")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "riskengine-bench" / "cluster")
    a = p.parse_args()
    as_of = date.fromisoformat(a.as_of)
    a.cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    lake = prepare_lake(a.cache, a.enterprises, a.generate_parts, a.buckets, a.seed)
    prep = time.perf_counter() - t0
    model = prepare_model(a.cache, a.train_enterprises, a.seed + 7, as_of)
    home = a.cache / "home"
    home.mkdir(exist_ok=True)
    single_out, cluster_out = a.cache / "single.parquet", a.cache / "cluster.parquet"
    singles, clusters = [], []
    for r in range(a.repeats):
        if not a.no_single:
            _log(f"single process, run {r + 1} …")
            singles.append(_child(SINGLE, str(lake), str(model), str(single_out), a.as_of, str(home)))
        _log(f"LocalCluster of {a.workers} workers, run {r + 1} …")
        clusters.append(_child(CLUSTER, str(lake), str(model), str(cluster_out), a.as_of, str(home),
                               str(a.workers), a.memory_limit, str(a.partitions)))
    identical = None
    if singles:
        import polars as pl

        identical = pl.read_parquet(single_out).equals(pl.read_parquet(cluster_out))

    def med(runs: list[dict], key: str) -> float | None:
        return statistics.median(r[key] for r in runs) if runs else None

    out = {
        "enterprises": a.enterprises, "graded": clusters[-1]["rows"], "buckets": a.buckets,
        "parts": clusters[-1]["parts"],
        "workers": a.workers, "memory_limit": a.memory_limit, "repeats": a.repeats,
        "prepare_lake_seconds": round(prep, 1),
        "single": {"seconds": med(singles, "seconds"), "peak_rss_bytes": med(singles, "peak_rss_bytes")},
        "cluster": {"seconds": med(clusters, "seconds"),
                    "cluster_start_seconds": med(clusters, "cluster_start_seconds"),
                    "peak_rss_per_worker_bytes": clusters[-1]["peak_rss_per_worker_bytes"],
                    "client_peak_rss_bytes": med(clusters, "client_peak_rss_bytes"),
                    "enterprises_per_second_per_worker":
                        clusters[-1]["rows"] / med(clusters, "seconds") / a.workers},
        "identical_outputs": identical,
        "load_average": os.getloadavg(),
    }
    if singles:
        out["speedup"] = out["single"]["seconds"] / out["cluster"]["seconds"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
