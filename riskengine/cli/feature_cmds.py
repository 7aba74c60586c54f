"""The ``features`` command: point-in-time features for many as_of dates in one pass."""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path
from typing import Annotated as _Annotated

import typer as _typer

from features import compute_features
from riskengine.cli import app
from riskengine.cli.options import parse_day
from riskengine.cli.score_cmds import _print_cluster_memory, _say_dashboard
from riskengine.core import exports
from riskengine.core.errors import UsageError
from riskengine.core.files import atomic_write
from riskengine.core.progress import progress
from riskengine.lake.layout import load_tables
from riskengine.workflows.cluster import ClusterSpec, features_lake_on_cluster


def parse_as_of(values: list[str]) -> list:
    """The --as-of values as dates; a clear UsageError naming the bad value otherwise."""


    if not values:
        raise UsageError("--as-of is required (a date YYYY-MM-DD; repeat it for several dates)")
    return [parse_day(raw) for raw in values]


@app.command()
def features(
    lake: _Annotated[_Path, _typer.Option(help="the lake folder written by `riskengine ingest`")],
    as_of: _Annotated[list[str], _typer.Option(
        "--as-of", help="decision date YYYY-MM-DD (uses only what was known before it); repeat for more")],
    out: _Annotated[_Path, _typer.Option(help="output file: Parquet, or CSV if the name ends in .csv")],
    half_life_days: _Annotated[float, _typer.Option(
        "--half-life-days", help="half-life of the time-decayed severity index")] = 180.0,
    cluster: _Annotated[str | None, _typer.Option(
        help="run on Dask: local, local:WORKERS or tcp://HOST:PORT (same features as without it)")] = None,
    partitions: _Annotated[int | None, _typer.Option(
        help="with --cluster: parts of the enterprises (default: the lake's buckets, else by size)")] = None,
    memory_limit: _Annotated[str | None, _typer.Option(
        "--memory-limit", help="with --cluster local: memory per worker, e.g. 8GiB")] = None,
) -> None:
    """Write one row per enterprise and as_of date (every enterprise established before it)."""

    dates = parse_as_of(as_of)
    if out.suffix.lower() not in (".parquet", ".csv", ".pq"):
        raise UsageError(f"--out must end in .parquet or .csv; got {out.name!r}")
    if cluster is not None:
        report = features_lake_on_cluster(ClusterSpec.parse(cluster), lake, dates, out, partitions=partitions,
                                          half_life_days=half_life_days, memory_limit=memory_limit,
                                          on_connect=_say_dashboard)
        print(f"wrote {report.rows:,} rows to {out} ({report.parts} parts on the cluster)", file=_sys.stderr)
        _print_cluster_memory(report)
        return
    if partitions is not None or memory_limit is not None:
        raise UsageError("--partitions and --memory-limit go with --cluster")
    with progress("features", total=3) as advance:
        tables = load_tables(lake)
        advance(description="building features")
        frame = compute_features(tables, dates, half_life_days=half_life_days)
        advance(description=f"writing {out.name}")
        atomic_write(out, (lambda tmp: exports.write_csv(frame, tmp, bom=False))
                     if out.suffix.lower() == ".csv" else frame.write_parquet)
        advance()
    present = set(frame.get_column("as_of").unique().to_list()) if frame.height else set()
    n = len(set(dates))
    print(f"wrote {frame.height:,} rows x {frame.width} columns ({n} as_of date{'s' if n != 1 else ''}) "
          f"to {out}", file=_sys.stderr)
    for d in sorted(set(dates) - present):
        print(f"note: no rows as of {d}: no enterprise of the lake was established before it",
              file=_sys.stderr)
