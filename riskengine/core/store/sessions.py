"""Sign-in sessions of the web pages: kept server-side in the serving store, by the hash of a token.

The browser holds only a random token (32 bytes, ``secrets.token_urlsafe``) in an HttpOnly cookie;
the store keeps its SHA-256, the API key it was opened with, when it was opened, last used and
ended, and why it ended. A session is valid while it has not ended, was used within the idle limit
and is younger than the absolute limit (OWASP Session Management: both timeouts, server-side).
Like keys, tokens have 256 bits of entropy, so a plain hash is enough.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from riskengine.core.store.lazy import LazyFamily

_DDL = """
CREATE TABLE IF NOT EXISTS ui_sessions (
    session_hash VARCHAR PRIMARY KEY,
    key_id VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    ended_why VARCHAR
);
"""
_COLUMNS = "session_hash, key_id, created_at, last_seen_at, ended_at, ended_why"

# Why a session ended (stored, and shown in the audit detail).
SIGNED_OUT, IDLE, EXPIRED, KEY_REVOKED = "signed_out", "idle", "expired", "key_revoked"


def hash_session_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionRecord:
    """One sign-in: the hash of its token, the key behind it, and its times."""

    session_hash: str
    key_id: str
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None = None
    ended_why: str | None = None

    @property
    def short_id(self) -> str:
        """A harmless name for logs and the audit trail (never the token)."""
        return self.session_hash[:12]

    def ends_why(self, now: datetime, idle: timedelta, absolute: timedelta) -> str | None:
        """Why the session is no longer valid at ``now`` (None while it is)."""
        if self.ended_at is not None:
            return self.ended_why or SIGNED_OUT
        if now - self.created_at >= absolute:
            return EXPIRED
        if now - self.last_seen_at >= idle:
            return IDLE
        return None


class SessionStore(LazyFamily):
    """The ``ui_sessions`` table of a serving store (created on first write; connections and locking
    are ``StoreBase``'s)."""

    DDL = _DDL
    TABLES = ("ui_sessions",)

    def _rows(self, query: str, params: list[object]) -> list[tuple[object, ...]]:
        with self._read() as con:  # a store from before the pages: no sessions yet
            return con.execute(query, params).fetchall() if con is not None else []

    def create(self, key_id: str, now: datetime) -> tuple[SessionRecord, str]:
        """A new session for ``key_id``: its record, and the token to hand the browser (once)."""
        token = secrets.token_urlsafe(32)
        record = SessionRecord(hash_session_token(token), key_id, now, now)
        with self._write() as con:
            con.execute(f"INSERT INTO ui_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                        [record.session_hash, key_id, now, now, None, None])
        return record, token

    def get(self, session_hash: str) -> SessionRecord | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM ui_sessions WHERE session_hash = ?", [session_hash])
        return SessionRecord(*rows[0]) if rows else None  # type: ignore[arg-type]

    def touch(self, record: SessionRecord, now: datetime) -> SessionRecord:
        """Record a use of the session (only ever moves ``last_seen_at`` forward)."""
        with self._write() as con:
            con.execute("UPDATE ui_sessions SET last_seen_at = greatest(last_seen_at, ?) "
                        "WHERE session_hash = ?", [now, record.session_hash])
        return replace(record, last_seen_at=max(record.last_seen_at, now))

    def end(self, record: SessionRecord, now: datetime, why: str) -> SessionRecord:
        """End the session (kept, with when and why); ending it again changes nothing."""
        with self._write() as con:
            con.execute("UPDATE ui_sessions SET ended_at = ?, ended_why = ? "
                        "WHERE session_hash = ? AND ended_at IS NULL", [now, why, record.session_hash])
        return replace(record, ended_at=record.ended_at or now, ended_why=record.ended_why or why)

    def of_key(self, key_id: str) -> list[SessionRecord]:
        """Every session opened with ``key_id``, oldest first."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM ui_sessions WHERE key_id = ? ORDER BY created_at",
                          [key_id])
        return [SessionRecord(*r) for r in rows]  # type: ignore[arg-type]
