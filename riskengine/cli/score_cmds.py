"""Commands of this group register on ``riskengine.cli.app``."""

from __future__ import annotations

from riskengine.cli import app  # noqa: F401
