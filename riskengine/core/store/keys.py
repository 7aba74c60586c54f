"""API keys: stored as SHA-256 hashes of high-entropy tokens only (``riskengine.core.keys``)."""

from __future__ import annotations

from riskengine.core.errors import ConflictError, FatalInputError, NotFoundError
from riskengine.core.records import KeyRecord
from riskengine.core.store.base import StoreBase, _first, utcnow


class KeyStore(StoreBase):
    DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    role VARCHAR NOT NULL,
    districts VARCHAR[],
    sector VARCHAR,
    key_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
"""
    TABLES = ("api_keys",)

    def add_key(self, record: KeyRecord) -> None:
        """Store a new key record (its hash only)."""
        with self._write() as con:
            exists = _first(con, "SELECT 1 FROM api_keys WHERE key_id = ?", [record.key_id])
            if exists:
                raise FatalInputError(f"key id {record.key_id} already exists")
            con.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [record.key_id, record.name, record.role, list(record.districts), record.sector,
                 record.key_hash, record.created_at, record.revoked_at],
            )

    def keys(self) -> list[KeyRecord]:
        """Every key record (revoked ones too), oldest first."""
        with self._read() as con:
            if con is None:
                return []
            rows = con.execute(
                "SELECT key_id, name, role, districts, sector, key_hash, created_at, revoked_at "
                "FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        return [
            KeyRecord(r[0], r[1], r[2], tuple(r[3] or ()), r[4], r[5], r[6], r[7]) for r in rows
        ]

    def key(self, key_id: str) -> KeyRecord | None:
        """One key record by id, or None."""
        with self._read() as con:
            if con is None:
                return None
            row = _first(
                con,
                "SELECT key_id, name, role, districts, sector, key_hash, created_at, revoked_at "
                "FROM api_keys WHERE key_id = ?",
                [key_id],
            )
        return None if row is None else KeyRecord(row[0], row[1], row[2], tuple(row[3] or ()), *row[4:])

    def revoke_key(self, key_id: str) -> KeyRecord:
        """Mark a key revoked (it stays listed); raises NotFoundError for an unknown id."""
        with self._write() as con:
            row = _first(con, "SELECT revoked_at, role FROM api_keys WHERE key_id = ?", [key_id])
            if row is None:
                raise NotFoundError(f"no API key with id {key_id!r}")
            if row[0] is None and row[1] == "admin":
                others = _first(con, "SELECT count(*) FROM api_keys WHERE role = 'admin' "
                                     "AND revoked_at IS NULL AND key_id <> ?", [key_id])
                if others is not None and others[0] == 0:
                    raise ConflictError(f"key {key_id} is the last active admin key: create another "
                                        "admin key before revoking it")
            if row[0] is None:
                con.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", [utcnow(), key_id])
        return next(k for k in self.keys() if k.key_id == key_id)
