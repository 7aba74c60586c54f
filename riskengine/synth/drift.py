"""A drift injected on purpose into the synthetic city (issue 14): a sector's risk shifting from a
date, so that monitoring can be shown to catch it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from riskengine.core.errors import UsageError
from riskengine.synth.world import SECTOR_KEYS


@dataclass(frozen=True)
class Drift:
    """From ``start`` on, the latent risk logit of every enterprise of ``sector`` moves by ``shift``
    (e.g. +1.5: a sector going bad)."""

    sector: str
    start: date
    shift: float

    @classmethod
    def parse(cls, text: str) -> Drift:
        """``SECTOR:YYYY-MM-DD:SHIFT``, e.g. ``catering:2025-06-01:1.5``."""
        parts = text.split(":")
        if len(parts) != 3:
            raise UsageError("--drift must be SECTOR:YYYY-MM-DD:SHIFT (e.g. catering:2025-06-01:1.5); "
                             f"got {text!r}")
        sector, day, shift = parts
        if sector not in SECTOR_KEYS:
            raise UsageError(f"--drift sector must be one of {', '.join(SECTOR_KEYS)}; got {sector!r}")
        try:
            start, value = date.fromisoformat(day), float(shift)
        except ValueError:
            raise UsageError(f"--drift needs a date YYYY-MM-DD and a number; got {text!r}") from None
        return cls(sector, start, value)

    def to_dict(self) -> dict[str, Any]:
        return {"sector": self.sector, "start": self.start.isoformat(), "shift": self.shift}
