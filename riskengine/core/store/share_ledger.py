"""The share ledger: what went to the credit platform, batch by batch (in the serving store).

A record family of the store (a ``StoreBase`` with its own DDL), opened on a ``Store``'s file like
``cases``: its tables are made on its first write and only they are checked when it reads, so a store
written before sharing still reads.

``riskengine share`` plans, then delivers. *Planning* compares the lake's credit records with the
ledger and writes the changed ones as numbered batches (state ``pending``) in one transaction: a
crash before it commits plans nothing, after it every change is written down. *Delivery* sends each
pending batch in order, always with the same content and idempotency key, and marks it ``sent``
only after the platform (or the folder) took it. A crash between the two sends the batch again with
the same key (same file name), which the platform recognises, so a record reaches it once in effect.

Batch states: ``pending`` (planned, not yet taken; ``attempts`` > 0 means earlier tries failed),
``sent``, ``dead`` (given up: rejected outright or failed in ``dead_after_runs`` runs; kept and
listed, not resent) and ``requeued`` (a dead batch whose records go back into planning).
A record's *planned hash* is the hash of its latest item in a pending, sent or dead batch, or its
baseline (a record the platform held before the first push, see ``--since``); it is planned again
only when its current hash differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from riskengine.core.store.base import utcnow
from riskengine.core.store.lazy import LazyFamily

DDL = """
CREATE TABLE IF NOT EXISTS share_batches (
    target VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    batch_id VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    n_records BIGINT NOT NULL,
    state VARCHAR NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    failed_runs INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    last_try_at TIMESTAMP,
    sent_at TIMESTAMP,
    PRIMARY KEY (target, seq)
);
CREATE TABLE IF NOT EXISTS share_items (
    target VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    line_no INTEGER NOT NULL,
    uscc VARCHAR NOT NULL,
    record_type VARCHAR NOT NULL,
    record_id VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    line VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS share_baseline (
    target VARCHAR NOT NULL,
    uscc VARCHAR NOT NULL,
    record_type VARCHAR NOT NULL,
    record_id VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    since DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS share_runs (
    target VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    planned_records BIGINT NOT NULL,
    sent_batches BIGINT NOT NULL,
    sent_records BIGINT NOT NULL,
    outcome VARCHAR NOT NULL
);
"""
_TABLES = ("share_batches", "share_items", "share_baseline", "share_runs")

PLANNED_SCHEMA: dict[str, pl.DataType] = {
    "uscc": pl.String(),
    "record_type": pl.String(),
    "record_id": pl.String(),
    "hash": pl.String(),
}


@dataclass(frozen=True)
class Batch:
    """One numbered batch of a target."""

    target: str
    seq: int
    batch_id: str
    created_at: datetime
    n_records: int
    state: str
    attempts: int
    failed_runs: int
    last_error: str | None
    last_try_at: datetime | None
    sent_at: datetime | None


_BATCH_COLUMNS = ", ".join(Batch.__dataclass_fields__)


class ShareLedger(LazyFamily):
    """The ledger tables of one serving store (connections and locking are ``StoreBase``'s)."""

    DDL = DDL
    TABLES = _TABLES

    def _read_rows(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._read() as con:
            return con.execute(query, params or []).fetchall() if con is not None else []

    # --- planning ---------------------------------------------------------------------------

    @staticmethod
    def _planned(con: duckdb.DuckDBPyConnection, target: str) -> pl.DataFrame:
        rows = con.execute(
            """
            SELECT uscc, record_type, record_id, hash FROM (
                SELECT i.uscc, i.record_type, i.record_id, i.hash,
                       row_number() OVER (PARTITION BY i.record_type, i.record_id ORDER BY i.seq DESC) AS k
                FROM share_items i JOIN share_batches b USING (target, seq)
                WHERE i.target = ? AND b.state IN ('pending', 'sent', 'dead')
            ) WHERE k = 1
            UNION ALL
            SELECT uscc, record_type, record_id, hash FROM share_baseline b WHERE target = ?
              AND NOT EXISTS (SELECT 1 FROM share_items i JOIN share_batches s USING (target, seq)
                              WHERE i.target = b.target AND i.record_type = b.record_type
                                AND i.record_id = b.record_id AND s.state IN ('pending', 'sent', 'dead'))
            """,
            [target, target],
        ).fetchall()
        return pl.DataFrame(rows, schema=PLANNED_SCHEMA, orient="row")

    def planned(self, target: str) -> pl.DataFrame:
        """The planned hash of every record of a target (``PLANNED_SCHEMA``), read only."""
        with self._read() as con:
            return self._planned(con, target) if con is not None else pl.DataFrame(schema=PLANNED_SCHEMA)

    def plan(
        self,
        target: str,
        changes: Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]],
        batch_size: int,
        since: date | None = None,
    ) -> list[int]:
        """Write the records that differ from the ledger as new pending batches, atomically.

        ``changes(planned)`` receives the planned hashes (``PLANNED_SCHEMA``) and returns the lines
        to send — ``uscc``, ``record_type``, ``record_id``, ``hash`` and ``line``, in order — and
        the baseline: records to count as already on the platform (``--since``), same columns but
        ``line``. Returns the new batch numbers.
        """
        with self._write() as con:
            lines, baseline = changes(self._planned(con, target))
            if baseline.height:
                con.register("_baseline", baseline.select(list(PLANNED_SCHEMA)).to_arrow())
                con.execute(
                    "DELETE FROM share_baseline b WHERE target = ? AND EXISTS (SELECT 1 FROM _baseline n "
                    "WHERE n.record_type = b.record_type AND n.record_id = b.record_id)",
                    [target],
                )
                con.execute(
                    "INSERT INTO share_baseline SELECT ?, uscc, record_type, record_id, hash, ? "
                    "FROM _baseline",
                    [target, since],
                )
                con.unregister("_baseline")
            if lines.height == 0:
                return []
            row = con.execute(
                "SELECT coalesce(max(seq), 0) FROM share_batches WHERE target = ?", [target]
            ).fetchone()
            first = int(row[0]) + 1 if row else 1
            now = utcnow()
            lines = lines.with_row_index("_i").with_columns(
                (pl.col("_i") // batch_size + first).cast(pl.Int64).alias("seq"),
                (pl.col("_i") % batch_size + 1).cast(pl.Int32).alias("line_no"),
            )
            seqs = lines["seq"].unique().sort().to_list()
            for seq in seqs:
                n = int((lines["seq"] == seq).sum())
                con.execute(
                    "INSERT INTO share_batches (target, seq, batch_id, created_at, n_records, state) "
                    "VALUES (?, ?, ?, ?, ?, 'pending')",
                    [target, seq, uuid.uuid4().hex, now, n],
                )
            con.register(
                "_lines",
                lines.select("seq", "line_no", "uscc", "record_type", "record_id", "hash", "line").to_arrow(),
            )
            con.execute(
                "INSERT INTO share_items SELECT ?, seq, line_no, uscc, record_type, record_id, hash, line "
                "FROM _lines",
                [target],
            )
            con.unregister("_lines")
        return [int(s) for s in seqs]

    # --- delivery ---------------------------------------------------------------------------

    def batches(self, target: str | None = None, states: tuple[str, ...] | None = None) -> list[Batch]:
        """Batches (of one target, in some states), in target and sequence order."""
        query = f"SELECT {_BATCH_COLUMNS} FROM share_batches WHERE true"
        params: list[Any] = []
        if target is not None:
            query += " AND target = ?"
            params.append(target)
        if states:
            query += f" AND state IN ({', '.join('?' for _ in states)})"
            params += list(states)
        return [Batch(*r) for r in self._read_rows(query + " ORDER BY target, seq", params)]

    def lines(self, target: str, seq: int) -> list[str]:
        """The JSON lines of one batch, in order (the same every time it is sent)."""
        rows = self._read_rows(
            "SELECT line FROM share_items WHERE target = ? AND seq = ? ORDER BY line_no", [target, seq]
        )
        return [r[0] for r in rows]

    def mark_sent(self, target: str, seq: int, attempts: int) -> None:
        with self._write() as con:
            now = utcnow()
            con.execute(
                "UPDATE share_batches SET state = 'sent', sent_at = ?, last_try_at = ?, "
                "attempts = attempts + ?, last_error = NULL WHERE target = ? AND seq = ?",
                [now, now, attempts, target, seq],
            )

    def mark_failed(
        self, target: str, seq: int, attempts: int, error: str, *, permanent: bool, dead_after_runs: int
    ) -> str:
        """Record a run's failed tries; the batch goes dead when rejected outright or after
        ``dead_after_runs`` failed runs. Returns its new state."""
        with self._write() as con:
            row = con.execute(
                "SELECT failed_runs FROM share_batches WHERE target = ? AND seq = ?", [target, seq]
            ).fetchone()
            runs = (int(row[0]) if row else 0) + 1
            state = "dead" if permanent or runs >= dead_after_runs else "pending"
            con.execute(
                "UPDATE share_batches SET state = ?, attempts = attempts + ?, failed_runs = ?, "
                "last_error = ?, last_try_at = ? WHERE target = ? AND seq = ?",
                [state, attempts, runs, error[:500], utcnow(), target, seq],
            )
        return state

    def requeue_dead(self, target: str | None = None) -> int:
        """Put the records of dead batches back into planning (the next run sends what is still
        current). Returns the number of batches requeued."""
        with self._write() as con:
            query = "UPDATE share_batches SET state = 'requeued' WHERE state = 'dead'"
            params: list[Any] = []
            if target is not None:
                query += " AND target = ?"
                params.append(target)
            row = con.execute(query + " RETURNING seq", params).fetchall()
        return len(row)

    def record_run(
        self,
        target: str,
        started_at: datetime,
        planned: int,
        sent_batches: int,
        sent_records: int,
        outcome: str,
    ) -> None:
        with self._write() as con:
            con.execute(
                "INSERT INTO share_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [target, started_at, utcnow(), planned, sent_batches, sent_records, outcome],
            )

    def status(self, target: str | None = None) -> list[dict[str, Any]]:
        """Per target: the last successful push, pending batches and records, failed (pending with
        failed tries) and dead letters."""
        where, params = ("WHERE target = ?", [target]) if target is not None else ("", [])
        targets = [
            r[0]
            for r in self._read_rows(
                f"SELECT DISTINCT target FROM (SELECT target FROM share_batches UNION ALL "
                f"SELECT target FROM share_runs) {where} ORDER BY target",
                params,
            )
        ]
        out = []
        for t in targets:
            last = self._read_rows(
                "SELECT max(finished_at) FROM share_runs WHERE target = ? AND outcome = 'ok'", [t]
            )
            batches = self.batches(t)
            pending = [b for b in batches if b.state == "pending"]
            out.append(
                {
                    "target": t,
                    "last_push": last[0][0] if last else None,
                    "sent_batches": sum(b.state == "sent" for b in batches),
                    "sent_records": sum(b.n_records for b in batches if b.state == "sent"),
                    "pending_batches": len(pending),
                    "pending_records": sum(b.n_records for b in pending),
                    "failed_batches": sum(b.attempts > 0 for b in pending),
                    "dead_letters": [
                        {
                            "seq": b.seq,
                            "batch_id": b.batch_id,
                            "records": b.n_records,
                            "attempts": b.attempts,
                            "last_try_at": b.last_try_at,
                            "error": b.last_error,
                        }
                        for b in batches
                        if b.state == "dead"
                    ],
                }
            )
        return out
