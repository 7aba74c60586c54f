"""``riskengine warnings`` (early warnings to districts) and ``riskengine monitor`` (grade performance)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from riskengine.cli import app
from riskengine.errors import UsageError
from riskengine.files import atomic_write_text


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
) -> None:
    """Evaluate the early-warning rules, store the new warnings and route each to its district."""
    from riskengine.config import get_settings
    from riskengine.policy import load_policy
    from riskengine.workflows.warnings import run_warnings

    if out is not None and out.suffix.lower() != ".json":
        raise UsageError(f"--out must end .json; got {out}")
    run = run_warnings(lake, _day(as_of), get_settings(), load_policy(policy), deliver_webhooks=push)
    print(
        f"预警 warnings as of {run.as_of}: {run.evaluated.height} raised by the rules, "
        f"{run.new.height} new (stored), {run.evaluated.height - run.new.height} already known",
        file=sys.stderr,
    )
    for row in run.by_district().iter_rows(named=True):
        print(f"  {row['district']}  {row['rule']:<28} {row['warnings']:>5}", file=sys.stderr)
    if run.delivery is not None and (run.delivery.sent or run.delivery.failed):
        print(
            f"webhooks: {run.delivery.sent} delivered, {run.delivery.failed} failed "
            f"({run.delivery.attempts} attempts)",
            file=sys.stderr,
        )
        for failure in run.delivery.failures[:5]:
            print(f"  failed: {failure}", file=sys.stderr)
    if out is not None:
        atomic_write_text(out, json.dumps(run.to_json(), ensure_ascii=False, indent=1) + "\n")
        print(f"wrote {out}", file=sys.stderr)
