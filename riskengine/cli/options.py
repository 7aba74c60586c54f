"""Option parsing shared by every command: one date parser, one message."""

from __future__ import annotations

from datetime import date

from riskengine.core.errors import UsageError


def parse_day(value: str, option: str = "--as-of") -> date:
    """``value`` as an ISO date, or a UsageError naming the option and the value (exit 2)."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{option} must be a date YYYY-MM-DD; got {value!r}") from None
