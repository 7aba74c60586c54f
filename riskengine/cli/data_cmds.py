"""Commands of this group register on ``riskengine.cli.app``."""

from __future__ import annotations

import sys as _sys
from datetime import date as _date
from pathlib import Path as _Path
from typing import Annotated as _Annotated

import typer as _typer

from riskengine.cli import app

# --- ingest -------------------------------------------------------------------------------------------


@app.command()
def ingest(
    source: _Annotated[_Path, _typer.Argument(help="source folder with <table>.csv or <table>.parquet")],
    lake: _Annotated[_Path, _typer.Option(help="the lake folder (created if absent)")],
    id_scheme: _Annotated[str | None, _typer.Option(
        "--id-scheme", help="uscc (GB 32100-2015 check) or any (any non-empty id); default from settings")
    ] = None,
    ingest_day: _Annotated[str | None, _typer.Option(
        "--ingest-day", help="no date may be after this day (YYYY-MM-DD; default today)")] = None,
) -> None:
    """Validate a source folder and append its good rows to the lake; bad rows go to quarantine."""
    from rich.console import Console

    from riskengine.cli.ingest_view import render_ingest_report
    from riskengine.config import get_settings
    from riskengine.errors import UsageError
    from riskengine.ingest import ingest as run_ingest

    day = None
    if ingest_day is not None:
        try:
            day = _date.fromisoformat(ingest_day)
        except ValueError as exc:
            raise UsageError(f"--ingest-day must be a date YYYY-MM-DD; got {ingest_day!r}") from exc
    report = run_ingest(source, lake, id_scheme or get_settings().id_scheme, ingest_day=day).to_dict()
    render_ingest_report(report, Console())
    rows = report["quarantine"]["rows"]
    if rows:
        print(f"{rows:,} rows quarantined (not in the lake): see {lake / report['quarantine']['file']}",
              file=_sys.stderr)
    print(f"report: {lake / '_reports' / (report['run_id'] + '.json')}", file=_sys.stderr)
