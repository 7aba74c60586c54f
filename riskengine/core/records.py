"""The records the store keeps and the faces pass around: API keys, overrides, plans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: its id, who holds it, its role and scope, and the hash of the token."""

    key_id: str
    name: str | None
    role: str
    districts: tuple[str, ...]
    sector: str | None
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Override:
    """A credit-office grade override: active from ``created_at`` until the start of ``expires_on``,
    or until the moment it was withdrawn (the row and its withdrawal stay stored)."""

    override_id: int
    enterprise_id: str
    grade: str
    reason: str
    expires_on: date
    created_by: str
    created_at: datetime
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    withdraw_reason: str | None = None

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def active_on(self, at: date | datetime) -> bool:
        """Whether the override is in force at ``at``: a datetime is compared with the moment of
        withdrawal; a bare date counts as withdrawn from the day the withdrawal happened."""
        day = at.date() if isinstance(at, datetime) else at
        if not self.created_at.date() <= day < self.expires_on:
            return False
        if self.withdrawn_at is None:
            return True
        if isinstance(at, datetime):
            return at < self.withdrawn_at
        return day < self.withdrawn_at.date()


def served_grade(scored: str, override: Override | None) -> str:
    """The grade the service shows: the override's while one is in force, else the scored grade."""
    return override.grade if override is not None else scored


@dataclass(frozen=True)
class PlanRecord:
    """One stored plan: its rows (any columns the planner produced) and its meta."""

    plan_id: int
    as_of: date | None
    period: str
    saved_at: datetime
    meta: dict[str, Any]
    rows: pl.DataFrame
