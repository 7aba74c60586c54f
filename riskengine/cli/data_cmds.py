"""Commands of this group register on ``riskengine.cli.app``."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from riskengine.cli import app
from riskengine.cli.ingest_view import render_ingest_report
from riskengine.cli.options import parse_day
from riskengine.core.config import get_settings
from riskengine.core.errors import UsageError
from riskengine.lake.ingest import export_quarantine
from riskengine.lake.ingest import ingest as run_ingest
from riskengine.lake.mapping import apply_mapping
from riskengine.lake.validate import BULK_DAY_FACTOR, BULK_DAY_MIN_ROWS
from riskengine.synth import Drift, generate_city

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
    mapping: Annotated[Path | None, typer.Option(
        help="a mapping file (TOML) that turns a bureau's own export into contract tables first")] = None,
    keep_bulk_days: Annotated[bool, typer.Option(
        "--keep-bulk-days", help=f"accept inspections on a day with over {BULK_DAY_FACTOR}x the median "
        f"day's count (and at least {BULK_DAY_MIN_ROWS}); by default they are quarantined as bulk entries "
        "(rule bulk_day)")] = False,
) -> None:
    """Validate a source folder and append its good rows to the lake; bad rows go to quarantine."""
    if mapping is not None:
        with tempfile.TemporaryDirectory(prefix="riskengine-mapped-") as mapped:
            made = apply_mapping(source, mapping, Path(mapped))
            print(f"{mapping.name}: mapped {source} to {', '.join(made)}", file=sys.stderr)
            ingest(Path(mapped), lake, id_scheme, ingest_day, quarantine_out, buckets, None, keep_bulk_days)
        return


    if quarantine_out is not None and quarantine_out.suffix.lower() not in (".xlsx", ".csv"):
        raise UsageError(f"--quarantine-out must end .xlsx or .csv; got {quarantine_out}")
    day = None if ingest_day is None else parse_day(ingest_day, "--ingest-day")
    report = run_ingest(source, lake, id_scheme or get_settings().id_scheme, ingest_day=day,
                        n_buckets=buckets, keep_bulk_days=keep_bulk_days).to_dict()
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
    drift: Annotated[str | None, typer.Option(
        help="inject a drift on purpose: SECTOR:YYYY-MM-DD:SHIFT moves that sector's risk logit by SHIFT "
             "from that day (e.g. catering:2025-06-01:1.5), for monitoring to catch")] = None,
) -> None:
    """Write a synthetic city (Wuhan) as a source folder OUT, with its ground truth in OUT/_truth/."""
    began = time.perf_counter()
    injected_drift = Drift.parse(drift) if drift is not None else None
    summary = generate_city(out, enterprises, seed, start=start, end=end, fmt=format, dirty=dirty,
                            drift=injected_drift)
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
    if injected_drift is not None:
        print(f"injected drift: sector {injected_drift.sector} risk logit {injected_drift.shift:+g} from "
              f"{injected_drift.start}", file=sys.stderr)
