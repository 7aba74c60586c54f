"""The audit log: append-only (there is no update or delete method)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import polars as pl

from riskengine.core.store.base import StoreBase, _arrow, _first

AUDIT_SCHEMA: dict[str, pl.DataType] = {
    "entry_id": pl.String(),
    "occurred_at": pl.Datetime("us"),
    "key_id": pl.String(),
    "key_name": pl.String(),
    "role": pl.String(),
    "action": pl.String(),
    "resource": pl.String(),
    "status": pl.Int32(),
    "detail": pl.String(),
}


class AuditStore(StoreBase):
    DDL = """
CREATE TABLE IF NOT EXISTS audit_log (
    entry_id VARCHAR NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    key_id VARCHAR,
    key_name VARCHAR,
    role VARCHAR,
    action VARCHAR NOT NULL,
    resource VARCHAR,
    status INTEGER,
    detail VARCHAR
);
"""
    TABLES = ("audit_log",)

    def append_audit(self, entries: pl.DataFrame | Sequence[Mapping[str, Any]]) -> int:
        """Append audit entries (append-only; an entry_id already stored is skipped, so a retried
        batch is never written twice). Returns the number of rows added."""
        frame = entries if isinstance(entries, pl.DataFrame) else pl.DataFrame(
            list(entries), schema=AUDIT_SCHEMA
        )
        if frame.height == 0:
            return 0
        frame = frame.select([pl.col(c).cast(t) for c, t in AUDIT_SCHEMA.items()])
        with self._write() as con:
            con.register("_incoming_audit", frame.to_arrow())
            before = _first(con, "SELECT count(*) FROM audit_log")
            con.execute(
                f"INSERT INTO audit_log SELECT {', '.join(AUDIT_SCHEMA)} FROM _incoming_audit i "
                # Only entries from the batch's time span can be duplicates: zone maps skip the rest
                # of a long log.
                "WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entry_id = i.entry_id "
                "AND a.occurred_at >= (SELECT min(occurred_at) FROM _incoming_audit))"
            )
            after = _first(con, "SELECT count(*) FROM audit_log")
            con.unregister("_incoming_audit")
        assert before is not None and after is not None
        return int(after[0]) - int(before[0])

    def audit(self, since: date | datetime | None = None) -> pl.DataFrame:
        """Audit entries at or after ``since`` (a date means its start, UTC), oldest first."""
        with self._read() as con:
            if con is None:
                return pl.DataFrame(schema=AUDIT_SCHEMA)
            if isinstance(since, date) and not isinstance(since, datetime):
                since = datetime(since.year, since.month, since.day)
            query = f"SELECT {', '.join(AUDIT_SCHEMA)} FROM audit_log"
            params: list[Any] = []
            if since is not None:
                query += " WHERE occurred_at >= ?"
                params.append(since)
            frame = _arrow(con, query + " ORDER BY occurred_at, entry_id", params)
        if frame.height == 0:
            return pl.DataFrame(schema=AUDIT_SCHEMA)
        return frame.cast(AUDIT_SCHEMA)  # type: ignore[arg-type]
