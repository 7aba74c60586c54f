"""The ``riskengine`` command line (Typer).

The CLI sits at the top of the engine: its commands import ``features``, ``models`` and (by import
string, for uvicorn) ``api`` lazily, inside the command, so that ``riskengine`` itself keeps to the
arrows of shared/STYLE.md and a command pays only for what it uses.

Each group of commands lives in its own module and registers on ``app``; errors are mapped to exit
codes in one place, ``main``: 0 success, 2 bad usage or fatal input, 1 anything else.
"""

from __future__ import annotations

import sys

import typer

from riskengine.core.errors import RiskEngineError

app = typer.Typer(
    name="riskengine",
    help="Credit-risk grading and graded supervision for market-regulation bureaus.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Importing the modules registers their commands on ``app``.
    from riskengine.cli import (  # noqa: PLC0415, F401
        case_cmds,
        data_cmds,
        feature_cmds,
        model_cmds,
        plan_cmds,
        quickstart_cmd,
        score_cmds,
        serve_cmds,
        share_cmds,
        watch_cmds,
    )


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and map the engine's errors to exit codes.

    Typer's standalone mode already turns usage errors into exit 2 and ``--help`` into exit 0 (its
    click is vendored, so its exceptions are not ``click``'s); the engine's own errors reach here.
    """
    try:
        app(args=argv, prog_name="riskengine")
    except RiskEngineError as exc:
        print(f"riskengine: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("riskengine: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - a bug (or a library's panic) still ends in one line
        sys.exit(_internal_error(exc))


def _internal_error(exc: BaseException) -> int:
    """Keep the traceback in a file and tell the user in one line where it is; exit status 1."""
    import tempfile  # noqa: PLC0415
    import traceback  # noqa: PLC0415
    from datetime import datetime  # noqa: PLC0415

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    with tempfile.NamedTemporaryFile("w", prefix=f"riskengine-error-{stamp}-", suffix=".txt",
                                     delete=False, encoding="utf-8") as fh:
        traceback.print_exception(exc, file=fh)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    print(f"riskengine: internal error ({type(exc).__name__}: {first}); this is a bug in riskengine, "
          f"not in your data: please send {fh.name}", file=sys.stderr)
    return 1
