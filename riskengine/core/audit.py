"""The audit log: who read or changed what, when, and with what result.

Entries are appended to the store's ``audit_log`` table (append-only). The API server does not
write one transaction per request: ``AuditWriter`` buffers entries in memory and a background
thread writes them in batches every ``flush_seconds``. Nothing is lost when the store is busy
(another process holds its lock): the batch stays buffered and is retried; at shutdown whatever
still cannot be written goes to a spill file next to the store (``<store>.audit-pending.jsonl``),
which the next flush merges. Every entry carries a unique ``entry_id`` and the store skips ids it
already has, so a batch retried after a partial failure is never written twice.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from riskengine.core.errors import UsageError
from riskengine.core.files import atomic_write
from riskengine.core.store import AUDIT_SCHEMA, Store, utcnow

log = logging.getLogger(__name__)

EXPORT_FORMATS = (".csv", ".parquet", ".xlsx")

# Column headers of the officers' Excel export.
HEADERS_ZH = {
    "entry_id": "记录编号", "occurred_at": "时间(UTC)", "key_id": "密钥编号", "key_name": "使用者",
    "role": "角色", "action": "操作", "resource": "对象", "status": "结果状态码", "detail": "说明",
}


def make_entry(
    action: str, *, resource: str | None = None, status: int, key_id: str | None = None,
    key_name: str | None = None, role: str | None = None, detail: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """One audit entry (who: key id/name/role; when; what: action + resource; result: status)."""
    return {
        "entry_id": uuid.uuid4().hex, "occurred_at": occurred_at or utcnow(), "key_id": key_id,
        "key_name": key_name, "role": role, "action": action, "resource": resource,
        "status": int(status), "detail": detail,
    }


def spill_path(store: Store) -> Path:
    """Where entries that could not be written at shutdown wait for the next flush."""
    return store.path.with_name(store.path.name + ".audit-pending.jsonl")


class AuditWriter:
    """Buffers audit entries and writes them to the store in batches (see the module docstring)."""

    def __init__(self, store: Store, flush_seconds: float = 1.0,
                 on_tick: Callable[[], None] | None = None) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._on_tick = on_tick
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, entry: dict[str, Any]) -> None:
        """Queue one entry (cheap; called on every request)."""
        with self._lock:
            self._buffer.append(entry)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Write the buffered entries (and any spilled ones); keep them buffered if that fails."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            spilled = self._read_spill()
            if not batch and not spilled:
                return 0
            try:
                written = self.store.append_audit(pl.DataFrame(spilled + batch, schema=AUDIT_SCHEMA))
            except Exception:
                log.warning("audit: store unavailable; %d entries kept for the next flush", len(batch),
                            exc_info=True)
                with self._lock:
                    self._buffer[:0] = batch
                return 0
            if spilled:
                spill_path(self.store).unlink(missing_ok=True)
            return written

    def _read_spill(self) -> list[dict[str, Any]]:
        path = spill_path(self.store)
        if not path.exists():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
                rows.append(row)
        return rows

    def _spill(self) -> None:
        """Append what is still buffered to the spill file (last resort at shutdown)."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        path = spill_path(self.store)
        with path.open("a", encoding="utf-8") as fh:
            for row in batch:
                fh.write(json.dumps({**row, "occurred_at": row["occurred_at"].isoformat()},
                                    ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        log.error("audit: store unavailable at shutdown; %d entries saved to %s", len(batch), path)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
            if self._on_tick is not None:
                try:
                    self._on_tick()
                except Exception:  # a failed refresh must not stop auditing
                    log.warning("audit: periodic task failed", exc_info=True)

    def start(self) -> None:
        """Start the background flush thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="riskengine-audit", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and write everything still buffered (spilling what cannot be written)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()
        if self.pending:
            self._spill()


def export_audit(store: Store, since: date | datetime | None, out: Path) -> int:
    """Write the audit log from ``since`` to ``out`` (.csv, .parquet or .xlsx by extension),
    atomically (temporary file, then rename). Returns the number of rows written."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise UsageError(f"--out must end in {', '.join(EXPORT_FORMATS)}; got {out.name!r}")
    frame = store.audit(since)

    def write(tmp: Path) -> None:
        if suffix == ".csv":
            frame.write_csv(tmp)
        elif suffix == ".parquet":
            frame.write_parquet(tmp)
        else:
            frame.rename(HEADERS_ZH).write_excel(tmp, worksheet="审计日志", autofit=True)

    atomic_write(out, write)
    return frame.height
