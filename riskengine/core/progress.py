"""Progress display for long work: a rich progress bar on a terminal, silent otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class Advance(Protocol):
    def __call__(self, steps: float = 1, description: str | None = None) -> None: ...


@contextmanager
def progress(description: str, total: float | None = None, *, lines: bool = False) -> Iterator[Advance]:
    """Yield ``advance(steps=1, description=None)``; shows a bar on stderr only when it is a TTY.

    Elsewhere it is silent, unless ``lines``: then a line on stderr at every tenth of ``total`` (for
    long runs whose console is a log file, e.g. the parts of a cluster run).
    """
    if not sys.stderr.isatty():
        if lines and total:
            yield _lines(description, total)
            return

        def _quiet(steps: float = 1, description: str | None = None) -> None:
            return None

        yield _quiet
        return

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total}"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def _advance(steps: float = 1, description: str | None = None) -> None:
            if description is not None:
                bar.update(task, advance=steps, description=description)
            else:
                bar.update(task, advance=steps)

        yield _advance


def _lines(label: str, total: float) -> Advance:
    """``advance`` that prints ``label: done/total (share) after N s`` at every tenth of ``total``."""
    start = time.monotonic()
    state = {"done": 0.0, "said": 0}

    def _advance(steps: float = 1, description: str | None = None) -> None:
        state["done"] += steps
        tenth = int(10 * state["done"] / total)
        if tenth > state["said"]:
            state["said"] = tenth
            print(f"{description or label}: {state['done']:.0f}/{total:.0f} "
                  f"({state['done'] / total:.0%}) after {time.monotonic() - start:.0f} s",
                  file=sys.stderr, flush=True)

    return _advance
