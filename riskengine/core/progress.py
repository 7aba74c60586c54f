"""Progress display for long work: a rich progress bar on a terminal, silent otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class Advance(Protocol):
    def __call__(self, steps: float = 1, description: str | None = None) -> None: ...


@contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Advance]:
    """Yield ``advance(steps=1, description=None)``; shows a bar on stderr only when it is a TTY."""
    if not sys.stderr.isatty():
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
