"""Grade overrides by the credit office: added, withdrawn with a reason, never deleted."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from riskengine.core.contract import GRADES
from riskengine.core.errors import ConflictError, FatalInputError, NotFoundError
from riskengine.core.records import Override
from riskengine.core.store.base import StoreBase, _first, utcnow

_OVERRIDE_COLUMNS = ("override_id", "enterprise_id", "grade", "reason", "expires_on", "created_by",
                     "created_at", "withdrawn_at", "withdrawn_by", "withdraw_reason")


class OverrideStore(StoreBase):
    DDL = """
CREATE SEQUENCE IF NOT EXISTS override_ids START 1;
CREATE TABLE IF NOT EXISTS overrides (
    override_id BIGINT PRIMARY KEY,
    enterprise_id VARCHAR NOT NULL,
    grade VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    expires_on DATE NOT NULL,
    created_by VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    withdrawn_at TIMESTAMP,
    withdrawn_by VARCHAR,
    withdraw_reason VARCHAR
);
-- Stores created before overrides could be withdrawn lack these columns: add them on open.
ALTER TABLE overrides ADD COLUMN IF NOT EXISTS withdrawn_at TIMESTAMP;
ALTER TABLE overrides ADD COLUMN IF NOT EXISTS withdrawn_by VARCHAR;
ALTER TABLE overrides ADD COLUMN IF NOT EXISTS withdraw_reason VARCHAR;
"""
    TABLES = ("overrides",)

    def add_override(
        self, enterprise_id: str, grade: str, reason: str, expires_on: date, created_by: str,
        created_at: datetime | None = None,
    ) -> Override:
        """Record a grade override (the newest active one wins)."""
        if grade not in GRADES:
            raise FatalInputError(f"override grade must be one of {'/'.join(GRADES)}; got {grade!r}")
        if not reason.strip():
            raise FatalInputError("override reason is required")
        created_at = created_at or utcnow()
        with self._write() as con:
            row = _first(con, "SELECT nextval('override_ids')")
            assert row is not None
            override_id = int(row[0])
            con.execute(
                "INSERT INTO overrides (override_id, enterprise_id, grade, reason, expires_on, created_by, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [override_id, enterprise_id, grade, reason, expires_on, created_by, created_at],
            )
        return Override(override_id, enterprise_id, grade, reason, expires_on, created_by, created_at)

    def withdraw_override(
        self, override_id: int, withdrawn_by: str, reason: str, withdrawn_at: datetime, *,
        enterprise_id: str | None = None,
    ) -> Override:
        """Withdraw an override from ``withdrawn_at`` on, recording who and why (nothing is deleted).

        Raises NotFoundError for an unknown id (or one of another enterprise, when ``enterprise_id``
        is given), ConflictError if it was already withdrawn or has expired by ``withdrawn_at``, and
        FatalInputError without a reason. Check and update run in one transaction, so of two
        concurrent withdrawals exactly one succeeds.
        """
        if not reason.strip():
            raise FatalInputError("withdrawing an override needs a reason")
        with self._write() as con:
            row = _first(con, f"SELECT {', '.join(_OVERRIDE_COLUMNS)} FROM overrides WHERE override_id = ?",
                         [override_id])
            if row is None or (enterprise_id is not None and row[1] != enterprise_id):
                raise NotFoundError(f"no override with id {override_id}"
                                    + (f" for enterprise {enterprise_id}" if enterprise_id else ""))
            found = Override(*row)
            if found.withdrawn_at is not None:
                raise ConflictError(f"override {override_id} was already withdrawn at "
                                    f"{found.withdrawn_at:%Y-%m-%d %H:%M} by {found.withdrawn_by}")
            if withdrawn_at.date() >= found.expires_on:
                raise ConflictError(f"override {override_id} expired on {found.expires_on}; "
                                    "there is nothing to withdraw")
            if withdrawn_at < found.created_at:
                raise FatalInputError(f"override {override_id}: withdrawn_at {withdrawn_at} is before "
                                      f"its creation at {found.created_at}")
            con.execute(
                "UPDATE overrides SET withdrawn_at = ?, withdrawn_by = ?, withdraw_reason = ? "
                "WHERE override_id = ?",
                [withdrawn_at, withdrawn_by, reason, override_id],
            )
        return replace(found, withdrawn_at=withdrawn_at, withdrawn_by=withdrawn_by, withdraw_reason=reason)

    def overrides(self, enterprise_id: str | None = None) -> list[Override]:
        """Stored overrides (of one enterprise, or all; withdrawn ones too), oldest first."""
        with self._read() as con:
            if con is None:
                return []
            # A store file from before withdrawals that was never opened for writing since lacks
            # the withdrawal columns (read-only connections cannot add them): read them as NULL.
            present = {r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'overrides'").fetchall()}
            columns = [c if c in present else f"NULL AS {c}" for c in _OVERRIDE_COLUMNS]
            query = f"SELECT {', '.join(columns)} FROM overrides"
            params: list[Any] = []
            if enterprise_id is not None:
                query += " WHERE enterprise_id = ?"
                params.append(enterprise_id)
            rows = con.execute(query + " ORDER BY created_at, override_id", params).fetchall()
        return [Override(*r) for r in rows]
