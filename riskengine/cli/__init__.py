"""The ``riskengine`` command line (Typer).

The CLI sits at the top of the engine: its commands import ``features``, ``models`` and (by import
string, for uvicorn) ``api`` lazily, inside the command, so that ``riskengine`` itself keeps to the
arrows of shared/STYLE.md and a command pays only for what it uses.

Each group of commands lives in its own module and registers on ``app``; errors are mapped to exit
codes in one place, ``main``: 0 success, 2 bad usage or fatal input, 1 anything else.
"""

from __future__ import annotations

import sys

import click
import typer

from riskengine.errors import RiskEngineError

app = typer.Typer(
    name="riskengine",
    help="Credit-risk grading and graded supervision for market-regulation bureaus.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Importing the modules registers their commands on ``app``.
    from riskengine.cli import (  # noqa: F401
        data_cmds,
        feature_cmds,
        model_cmds,
        plan_cmds,
        quickstart_cmd,
        score_cmds,
        serve_cmds,
    )


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and map errors to exit codes."""
    try:
        app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("riskengine: interrupted", file=sys.stderr)
        sys.exit(130)
    except RiskEngineError as exc:
        print(f"riskengine: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(0)
