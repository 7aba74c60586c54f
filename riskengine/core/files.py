"""Atomic file writes and JSON-ready values.

Every output goes to a temporary file beside its target, then is renamed.

A crash, Ctrl-C or a failing writer never leaves a half-written file under the target's name, and an
existing file stays as it was until the new one is complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from pydantic_core import to_jsonable_python


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder, then ``os.replace`` it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _fallback(value: Any) -> Any:
    if isinstance(value, pl.DataFrame):
        return value.to_dicts()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return str(value)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dates as ISO text, numpy scalars as numbers, frames as row lists,
    tuples and sets as lists, NaN and infinities as null, anything else unknown as its text."""
    return to_jsonable_python(value, fallback=_fallback, inf_nan_mode="null")
