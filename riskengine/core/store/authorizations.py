"""Enterprises' authorizations for finance partners (质量信用金融+), in the serving store.

A record family of the store (a ``StoreBase`` with its own DDL), opened on a ``Store``'s file like
``cases``.

An enterprise signs a consent; the credit office records it as an authorization: its id, the
partner (a bank or guarantor, named as the partner's ``finance`` key is named), the scope (what the
partner may read; ``credit_record``), the day it was granted and the day it expires, and the
reference of the signed consent. It is *in force* on day t when granted_on <= t < expires_on and
not revoked by then. Revoking keeps the row (who, when, why). A finance key reads an enterprise's
credit record only while one is in force for its partner; every read is in the audit log, and
``credit_record_reads`` lists them for the enterprise's history.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from riskengine.core.errors import ConflictError, FatalInputError, NotFoundError
from riskengine.core.store import Store
from riskengine.core.store.base import utcnow
from riskengine.core.store.lazy import LazyFamily

SCOPES: tuple[str, ...] = ("credit_record",)
READ_ACTION = "read_credit_record"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")

DDL = """
CREATE TABLE IF NOT EXISTS authorizations (
    authorization_id VARCHAR PRIMARY KEY,
    enterprise_id VARCHAR NOT NULL,
    partner VARCHAR NOT NULL,
    scope VARCHAR[] NOT NULL,
    granted_on DATE NOT NULL,
    expires_on DATE NOT NULL,
    consent_reference VARCHAR NOT NULL,
    recorded_by VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoked_by VARCHAR,
    revoke_reason VARCHAR
);
"""
_COLUMNS = (
    "authorization_id",
    "enterprise_id",
    "partner",
    "scope",
    "granted_on",
    "expires_on",
    "consent_reference",
    "recorded_by",
    "recorded_at",
    "revoked_at",
    "revoked_by",
    "revoke_reason",
)


@dataclass(frozen=True)
class Authorization:
    """One recorded consent of an enterprise for one partner."""

    authorization_id: str
    enterprise_id: str
    partner: str
    scope: tuple[str, ...]
    granted_on: date
    expires_on: date
    consent_reference: str
    recorded_by: str
    recorded_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def in_force(self, at: datetime) -> bool:
        """Whether the partner may read at ``at`` (granted, not expired, not revoked by then)."""
        if not self.granted_on <= at.date() < self.expires_on:
            return False
        return self.revoked_at is None or at < self.revoked_at


def _row(r: tuple[Any, ...]) -> Authorization:
    values = dict(zip(_COLUMNS, r, strict=True))
    return Authorization(**{**values, "scope": tuple(values["scope"] or ())})


class Authorizations(LazyFamily):
    """The authorization records of one serving store (connections and locking are ``StoreBase``'s)."""

    DDL = DDL
    TABLES = ("authorizations",)

    def _rows(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._read() as con:
            return con.execute(query, params).fetchall() if con is not None else []

    def add(
        self,
        enterprise_id: str,
        partner: str,
        scope: tuple[str, ...],
        granted_on: date,
        expires_on: date,
        consent_reference: str,
        recorded_by: str,
        recorded_at: datetime | None = None,
        authorization_id: str | None = None,
    ) -> Authorization:
        """Record an authorization (ConflictError if its id exists; FatalInputError for bad fields)."""
        partner, consent_reference = partner.strip(), consent_reference.strip()
        if not partner:
            raise FatalInputError("partner: the finance partner is required")
        if not consent_reference:
            raise FatalInputError("consent_reference: the signed consent's reference is required")
        unknown = [s for s in scope if s not in SCOPES]
        if not scope or unknown:
            raise FatalInputError(f"scope must list one or more of {', '.join(SCOPES)}; got {list(scope)}")
        if expires_on <= granted_on:
            raise FatalInputError(f"expires_on ({expires_on}) must be after granted_on ({granted_on})")
        if authorization_id is not None and not _ID.match(authorization_id):
            raise FatalInputError(
                f"authorization_id: letters, digits and _ . : / - only, at most 64; got {authorization_id!r}"
            )
        record = Authorization(
            authorization_id or f"AUTH-{secrets.token_hex(6).upper()}",
            enterprise_id,
            partner,
            tuple(dict.fromkeys(scope)),
            granted_on,
            expires_on,
            consent_reference,
            recorded_by,
            recorded_at or utcnow(),
        )
        with self._write() as con:
            if con.execute(
                "SELECT 1 FROM authorizations WHERE authorization_id = ?", [record.authorization_id]
            ).fetchall():
                raise ConflictError(f"authorization {record.authorization_id} is already recorded")
            con.execute(
                f"INSERT INTO authorizations ({', '.join(_COLUMNS[:9])}) VALUES "
                f"({', '.join('?' for _ in _COLUMNS[:9])})",
                [
                    record.authorization_id,
                    record.enterprise_id,
                    record.partner,
                    list(record.scope),
                    record.granted_on,
                    record.expires_on,
                    record.consent_reference,
                    record.recorded_by,
                    record.recorded_at,
                ],
            )
        return record

    def revoke(
        self, enterprise_id: str, authorization_id: str, revoked_by: str, reason: str, at: datetime
    ) -> Authorization:
        """End an authorization now (NotFoundError for an unknown id or another enterprise's;
        ConflictError if already revoked)."""
        if not reason.strip():
            raise FatalInputError("reason: revoking an authorization needs a reason")
        with self._write() as con:
            rows = con.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM authorizations WHERE authorization_id = ?",
                [authorization_id],
            ).fetchall()
            if not rows or rows[0][1] != enterprise_id:
                raise NotFoundError(f"no authorization {authorization_id} for enterprise {enterprise_id}")
            found = _row(rows[0])
            if found.revoked_at is not None:
                raise ConflictError(
                    f"authorization {authorization_id} was already revoked at "
                    f"{found.revoked_at:%Y-%m-%d %H:%M} by {found.revoked_by}"
                )
            con.execute(
                "UPDATE authorizations SET revoked_at = ?, revoked_by = ?, revoke_reason = ? "
                "WHERE authorization_id = ?",
                [at, revoked_by, reason.strip(), authorization_id],
            )
        return replace(found, revoked_at=at, revoked_by=revoked_by, revoke_reason=reason.strip())

    def of(self, enterprise_id: str) -> list[Authorization]:
        """Every authorization of an enterprise (revoked and expired ones too), oldest first."""
        rows = self._rows(
            f"SELECT {', '.join(_COLUMNS)} FROM authorizations WHERE enterprise_id = ? "
            "ORDER BY recorded_at, authorization_id",
            [enterprise_id],
        )
        return [_row(r) for r in rows]

    def in_force(self, enterprise_id: str, partner: str, scope: str, at: datetime) -> Authorization | None:
        """The authorization letting ``partner`` read ``scope`` of the enterprise at ``at``, or None."""
        for a in reversed(self.of(enterprise_id)):
            if a.partner == partner and scope in a.scope and a.in_force(at):
                return a
        return None


def credit_record_reads(store: Store, enterprise_id: str) -> list[dict[str, Any]]:
    """Which partner read the enterprise's credit record and when (from the audit log), oldest first."""
    with store._connect(write=False) as con:
        if con is None:
            return []
        rows = con.execute(
            "SELECT occurred_at, key_id, key_name, role, detail FROM audit_log "
            "WHERE action = ? AND resource = ? AND status = 200 ORDER BY occurred_at, entry_id",
            [READ_ACTION, f"/v1/enterprises/{enterprise_id}/credit-record"],
        ).fetchall()
    out = []
    for occurred_at, key_id, key_name, role, detail in rows:
        fields = dict(p.split("=", 1) for p in (detail or "").split() if "=" in p)
        out.append(
            {
                "read_at": occurred_at,
                "partner": key_name,
                "key_id": key_id,
                "role": role,
                "authorization_id": fields.get("authorization"),
            }
        )
    return out
