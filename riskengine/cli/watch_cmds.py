"""``riskengine warnings`` (early warnings to districts) and ``riskengine monitor`` (grade performance)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from riskengine.cli import app
from riskengine.cli.score_cmds import _say_dashboard
from riskengine.core.config import get_settings
from riskengine.core.errors import ModelError, UsageError
from riskengine.core.files import atomic_write_text
from riskengine.supervision.policy import load_policy
from riskengine.workflows.cluster import ClusterSpec, warnings_evaluator
from riskengine.workflows.monitor import log_to_mlflow, run_monitor, save_latest
from riskengine.workflows.reports.monitor_html import render_html
from riskengine.workflows.scoring import load_champion
from riskengine.workflows.warnings import run_warnings


def _day(text: str, option: str = "--as-of") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} must be a date YYYY-MM-DD; got {text!r}") from None


@app.command()
def warnings(
    lake: Annotated[Path, typer.Option(help="the lake folder")],
    as_of: Annotated[str, typer.Option("--as-of", help="evaluate with what was known before this day")],
    out: Annotated[Path | None, typer.Option(help="write the new warnings as a JSON list")] = None,
    policy: Annotated[Path | None, typer.Option(help="policy TOML (default: the built-in policy)")] = None,
    push: Annotated[bool, typer.Option(help="deliver new warnings to webhook subscribers")] = True,
    cluster: Annotated[str | None, typer.Option(
        help="evaluate on Dask: local, local:WORKERS or tcp://HOST:PORT (the same warnings)")] = None,
    partitions: Annotated[int | None, typer.Option(
        help="with --cluster: parts of the enterprises (default: the lake's buckets, else by size)")] = None,
) -> None:
    """Evaluate the early-warning rules, store the new warnings and route each to its district."""

    if out is not None and out.suffix.lower() != ".json":
        raise UsageError(f"--out must end .json; got {out}")
    day, settings, rules = _day(as_of), get_settings(), load_policy(policy)
    if cluster is None:
        if partitions is not None:
            raise UsageError("--partitions goes with --cluster")
        run = run_warnings(lake, day, settings, rules, deliver_webhooks=push)
    else:
        with warnings_evaluator(ClusterSpec.parse(cluster), partitions=partitions,
                                on_connect=_say_dashboard) as evaluate:
            run = run_warnings(lake, day, settings, rules, deliver_webhooks=push, evaluate=evaluate)
    print(
        f"预警 warnings as of {run.as_of}: {run.evaluated.height} raised by the rules, "
        f"{run.new.height} new (stored), {run.evaluated.height - run.new.height} already known",
        file=sys.stderr,
    )
    for row in run.by_district().iter_rows(named=True):
        print(f"  {row['district']}  {row['rule']:<28} {row['warnings']:>5}", file=sys.stderr)
    if run.delivery is not None and (run.delivery.sent or run.delivery.failed or run.delivery.skipped):
        print(
            f"webhooks: {run.delivery.sent} delivered, {run.delivery.failed} failed, "
            f"{run.delivery.skipped} left for the next run ({run.delivery.attempts} attempts)",
            file=sys.stderr,
        )
        for failure in run.delivery.failures[:5]:
            print(f"  failed: {failure}", file=sys.stderr)
    if out is not None:
        atomic_write_text(out, json.dumps(run.to_json(), ensure_ascii=False, indent=1) + "\n")
        print(f"wrote {out}", file=sys.stderr)


@app.command()
def monitor(
    lake: Annotated[Path, typer.Option(help="the lake folder")],
    as_of: Annotated[str, typer.Option("--as-of", help="report on the months before this day")],
    out: Annotated[Path, typer.Option(help="report.html (self-contained) or report.json")],
    months: Annotated[int, typer.Option(help="how many full months before --as-of")] = 12,
    policy: Annotated[
        Path | None, typer.Option(help="policy TOML (alert thresholds; default built-in)")
    ] = None,
    mlflow: Annotated[bool, typer.Option(help="log the figures as metrics of the champion's version")] = True,
    fail_on_alert: Annotated[bool, typer.Option(help="exit 1 when the report raises alerts")] = True,
) -> None:
    """The grade-performance report: rates by grade with intervals, monotonicity, drift, migration."""

    if out.suffix.lower() not in (".html", ".json"):
        raise UsageError(f"--out must end .html or .json; got {out}")
    day = _day(as_of)
    settings = get_settings()
    chosen = load_policy(policy)
    model = None
    try:
        model = load_champion(settings)
    except ModelError as exc:
        print(f"monitor: no champion ({exc}); the report has no PSI", file=sys.stderr)
    report = run_monitor(lake, day, months, settings, chosen.monitor, model)
    data = report.to_json()
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    if out.suffix.lower() == ".json":
        atomic_write_text(out, text)
    else:
        atomic_write_text(out, render_html(data, chosen.monitor.min_inspections))
        atomic_write_text(out.with_suffix(".json"), text)  # the same figures for a scheduler
    save_latest(report, settings)
    if mlflow and model is not None:
        run_id = log_to_mlflow(report, settings)
        if run_id:
            print(f"figures logged to MLflow run {run_id} (champion {report.model_version})", file=sys.stderr)
    pooled = data["pooled"]["grades"]
    line = "  ".join(
        f"{g} {c['adverse_per_100']:.1f} ({c['ci_low']:.1f}–{c['ci_high']:.1f}, n={c['random_inspections']})"
        if c["adverse_per_100"] is not None
        else f"{g} —"
        for g, c in pooled.items()
    )
    print(f"每百次随机检查不良结果 adverse per 100 random inspections, pooled: {line}", file=sys.stderr)
    print(f"wrote {out}; {len(data['alerts'])} alert(s), {len(data['watch'])} watch item(s)", file=sys.stderr)
    for alert in data["alerts"]:
        print(f"  ALERT {alert['rule']}: {alert['detail']}", file=sys.stderr)
    for note in data["notes"]:
        print(f"  note: {note}", file=sys.stderr)
    if data["alerts"] and fail_on_alert:
        raise typer.Exit(1)
