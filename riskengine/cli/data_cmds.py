"""Commands of this group register on ``riskengine.cli.app``."""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from riskengine.cli import app
from riskengine.cli.ingest_view import render_ingest_report
from riskengine.core.config import get_settings
from riskengine.core.errors import UsageError
from riskengine.lake.ingest import export_quarantine
from riskengine.lake.ingest import ingest as run_ingest
from riskengine.synth import generate_city

# --- ingest -------------------------------------------------------------------------------------------


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="source folder with <table>.csv or <table>.parquet")],
    lake: Annotated[Path, typer.Option(help="the lake folder (created if absent)")],
    id_scheme: Annotated[str | None, typer.Option(
        "--id-scheme", help="uscc (GB 32100-2015 check) or any (any non-empty id); default from settings")
    ] = None,
    ingest_day: Annotated[str | None, typer.Option(
        "--ingest-day", help="no date may be after this day (YYYY-MM-DD; default today)")] = None,
    quarantine_out: Annotated[Path | None, typer.Option(
        "--quarantine-out", help="also write this run's quarantined rows as a list (.xlsx or .csv)")] = None,
    buckets: Annotated[int | None, typer.Option(
        help="lay a new lake out in this many buckets of enterprise_id, for --cluster (CONTRACT §8)")] = None,
) -> None:
    """Validate a source folder and append its good rows to the lake; bad rows go to quarantine."""


    if quarantine_out is not None and quarantine_out.suffix.lower() not in (".xlsx", ".csv"):
        raise UsageError(f"--quarantine-out must end .xlsx or .csv; got {quarantine_out}")
    day = None
    if ingest_day is not None:
        try:
            day = date.fromisoformat(ingest_day)
        except ValueError as exc:
            raise UsageError(f"--ingest-day must be a date YYYY-MM-DD; got {ingest_day!r}") from exc
    report = run_ingest(source, lake, id_scheme or get_settings().id_scheme, ingest_day=day,
                        n_buckets=buckets).to_dict()
    render_ingest_report(report, Console())
    rows = report["quarantine"]["rows"]
    if rows:
        print(f"{rows:,} rows quarantined (not in the lake): see {lake / report['quarantine']['file']}",
              file=sys.stderr)
    print(f"report: {lake / '_reports' / (report['run_id'] + '.json')}", file=sys.stderr)
    if quarantine_out is not None:
        n = export_quarantine(lake, report["run_id"], quarantine_out)
        print(f"wrote {n:,} quarantine entries to {quarantine_out}", file=sys.stderr)


# --- generate -----------------------------------------------------------------------------------------


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="folder to write the source tables and _truth/ into")],
    enterprises: Annotated[int, typer.Option(help="number of enterprises")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same city")] = 42,
    start: Annotated[str, typer.Option(help="first day of the event history (YYYY-MM-DD)")] = "2019-01-01",
    end: Annotated[str, typer.Option(help="last day of the event history (YYYY-MM-DD)")] = "2025-12-31",
    format: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    dirty: Annotated[float, typer.Option(help="fraction of realistic bad rows to add, e.g. 0.01")] = 0.0,
) -> None:
    """Write a synthetic city (Wuhan) as a source folder OUT, with its ground truth in OUT/_truth/."""



    began = time.perf_counter()
    summary = generate_city(out, enterprises, seed, start=start, end=end, fmt=format, dirty=dirty)
    injected = summary["injected"].get("by_table", {}) if summary["injected"] else {}
    table = Table(title=f"synthetic city: {enterprises:,} enterprises, seed {seed}, {start}..{end}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("bad rows added", justify="right")
    for name, rows in summary["rows"].items():
        table.add_row(name, f"{rows:,}", f"{sum(injected.get(name, {}).values()):,}")
    Console().print(table)
    print(f"wrote {out} ({format}) and {out / '_truth'} in {time.perf_counter() - began:.1f}s",
          file=sys.stderr)
