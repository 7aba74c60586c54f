"""The audit log: who read or changed what, when, and with what result.

Entries end in the store's ``audit_log`` table (append-only), but the API server does not wait for
one store transaction per request. Each entry is first appended to a journal — JSON lines in
``<store>.audit-journal/`` — and made durable there (fdatasync) before the request is answered;
entries arriving while one sync runs share the next one (group commit), so a sync costs each
request at most about two disk flushes. A background thread merges the journal into the store every
``flush_seconds``. So a ``kill -9`` loses no audit row of an answered request: the next server start,
flush or ``riskengine audit`` merges what the dead process journalled. With ``sync=False``
(``service.audit_sync = "write"``) an entry is only handed to the kernel before the answer: that
survives the server's crash or ``kill -9`` but not a power loss or kernel crash, and costs almost
nothing.

Journal files: the writer holds an exclusive ``flock`` on its open segment (``*.open.jsonl``) and
seals it (renames it to ``*.jsonl``) before merging. Anyone may merge sealed segments and open ones
whose writer is gone (the lock is free); a merged segment is deleted. Every entry carries a unique
``entry_id`` and the store skips ids it already has, so merging twice never writes a row twice.
A last line cut short by a crash was never synced, so its request was never answered: it is skipped.
"""

from __future__ import annotations

import fcntl
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

from riskengine.core import exports
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
    """Where an earlier version kept entries it could not write at shutdown (still merged)."""
    return store.path.with_name(store.path.name + ".audit-pending.jsonl")


def journal_dir(store: Store) -> Path:
    """The folder of the audit journal's segments, beside the store."""
    return store.path.with_name(store.path.name + ".audit-journal")


def _entry_line(entry: dict[str, Any]) -> bytes:
    occurred = entry["occurred_at"]
    row = {**entry, "occurred_at": occurred.isoformat() if isinstance(occurred, datetime) else occurred}
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def read_segment(path: Path) -> list[dict[str, Any]]:
    """The entries of one journal segment (a line cut short by a crash is skipped)."""
    rows = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
        except (ValueError, KeyError, TypeError):
            continue  # never synced whole, so never answered
        rows.append(row)
    return rows


def _is_abandoned(path: Path) -> bool:
    """Whether an open segment's writer is gone (its lock is free)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def merge_journal(store: Store) -> int:
    """Write every sealed or abandoned journal segment (and an old spill file) into the store, then
    delete them. Raises what the store raises (e.g. busy); the segments then stay for the next try.
    Returns the number of rows added."""
    folder = journal_dir(store)
    segments = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    ready = [p for p in segments if not p.name.endswith(".open.jsonl") or _is_abandoned(p)]
    spill = spill_path(store)
    sources = ready + ([spill] if spill.exists() else [])
    rows = [row for path in sources for row in read_segment(path)]
    written = store.append_audit(pl.DataFrame(rows, schema=AUDIT_SCHEMA)) if rows else 0
    for path in sources:
        path.unlink(missing_ok=True)
    return written


def journalled_entries(store: Store) -> pl.DataFrame:
    """Entries still in the journal (not yet merged), e.g. those of a running server."""
    folder = journal_dir(store)
    rows = [row for p in sorted(folder.glob("*.jsonl")) for row in read_segment(p)] if folder.is_dir() else []
    return pl.DataFrame(rows, schema=AUDIT_SCHEMA)


Durable = Callable[[OSError | None], None]
"""Told when a journalled entry is on disk (``None``) or could not be written (the error)."""


class AuditJournal:
    """Append-only, fdatasync'ed JSON lines with group commit (see the module docstring)."""

    def __init__(self, folder: Path, sync: bool = True) -> None:
        self.folder = Path(folder)
        self.sync = sync
        self._cond = threading.Condition()
        self._io = threading.Lock()  # the open segment's descriptor: writes, seals and reopens
        self._queue: list[tuple[bytes, Durable | None]] = []
        self._fd: int | None = None
        self._path: Path | None = None
        self._seq = 0
        self._segment_entries = 0
        self._rotate_requested = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.synced = 0  # entries made durable (for metrics and tests)

    # --- writer side -------------------------------------------------------------------------

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._open_segment()
        self._thread = threading.Thread(target=self._run, name="riskengine-audit-journal", daemon=True)
        self._thread.start()

    def _open_segment(self) -> None:
        self._seq += 1
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{stamp}-{os.getpid()}-{self._seq:06d}.open.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd, self._path = fd, path
        self._segment_entries = 0

    def _seal(self) -> None:
        """Close the open segment under its sealed name (so it can be merged)."""
        if self._fd is None or self._path is None:
            return
        os.fdatasync(self._fd)
        sealed = self._path.with_name(self._path.name.replace(".open.jsonl", ".jsonl"))
        os.replace(self._path, sealed)
        os.close(self._fd)  # releases the lock
        self._fd = self._path = None

    def append(self, entry: dict[str, Any], on_durable: Durable | None = None) -> None:
        """Queue one entry; ``on_durable(None)`` is called (from the journal's thread) once it is synced,
        ``on_durable(error)`` if it could not be written."""
        line = _entry_line(entry)
        if not self.sync:  # handed to the kernel at once, in the caller's thread: no flush to wait for
            with self._io:
                if self._closed or self._fd is None:
                    raise RuntimeError("audit journal is closed")
                error: OSError | None = None
                try:
                    os.write(self._fd, line)
                    self.synced += 1
                    self._segment_entries += 1
                except OSError as exc:
                    log.error("audit: cannot write the journal: %s", exc)
                    error = exc
            if on_durable is not None:
                on_durable(error)
            return
        with self._cond:
            if self._closed:
                raise RuntimeError("audit journal is closed")
            self._queue.append((line, on_durable))
            self._cond.notify()

    def rotate(self) -> None:
        """Seal the open segment and start a new one (done by the journal's thread, between syncs)."""
        with self._cond:
            if self._thread is None:
                return
            self._rotate_requested = True
            self._cond.notify()
            while self._rotate_requested and self._thread.is_alive():
                self._cond.wait(1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._rotate_requested and not self._closed:
                    self._cond.wait()
                batch, self._queue = self._queue, []
                rotate, closing = self._rotate_requested, self._closed
            if batch:
                error: OSError | None = None
                try:
                    with self._io:
                        assert self._fd is not None
                        os.write(self._fd, b"".join(line for line, _ in batch))
                        os.fdatasync(self._fd)  # one flush for every entry that arrived meanwhile
                        self.synced += len(batch)
                        self._segment_entries += len(batch)
                except OSError as exc:  # e.g. disk full: those requests must not be answered as done
                    log.error("audit: cannot write the journal: %s", exc)
                    error = exc
                for _, done in batch:
                    if done is not None:
                        done(error)
            with self._io:
                if closing:
                    self._seal()
                elif rotate and self._segment_entries:  # an empty segment stays open: nothing to merge
                    self._seal()
                    self._open_segment()
            if rotate or closing:
                with self._cond:
                    self._rotate_requested = False
                    self._cond.notify_all()
            if closing and not batch:
                return

    def close(self) -> None:
        """Sync what is queued, seal the segment and stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class AuditWriter:
    """The server's audit: entries go to the journal at once and reach the store every
    ``flush_seconds`` (see the module docstring)."""

    def __init__(self, store: Store, flush_seconds: float = 1.0,
                 on_tick: Callable[[], None] | None = None, sync: bool = True) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._on_tick = on_tick
        self.sync = sync
        self.journal = AuditJournal(journal_dir(store), sync)
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._merged_through = 0

    def record(self, entry: dict[str, Any], on_durable: Durable | None = None) -> None:
        """Journal one entry; ``on_durable(None)`` is called once it is on disk (the API answers then),
        ``on_durable(error)`` if it cannot be written."""
        if not self._started:
            with self._flush_lock:
                if not self._started:
                    self.journal.start()
                    self._started = True
        self.journal.append(entry, on_durable)

    @property
    def pending(self) -> int:
        """Entries journalled but not yet merged into the store."""
        return max(self.journal.synced - self._merged_through, 0)

    def flush(self) -> int:
        """Seal the journal's segment and merge every finished segment into the store; what cannot
        be written now (store busy) stays in the journal for the next flush. Returns rows added."""
        with self._flush_lock:
            synced = self.journal.synced
            if self._started:
                self.journal.rotate()
            try:
                written = merge_journal(self.store)
            except Exception:
                log.warning("audit: store unavailable; entries stay in the journal %s",
                            journal_dir(self.store), exc_info=True)
                return 0
            self._merged_through = synced
            return written

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
            if self._on_tick is not None:
                try:
                    self._on_tick()
                except Exception:  # a failed refresh must not stop auditing
                    log.warning("audit: periodic task failed", exc_info=True)

    def start(self) -> None:
        """Open the journal, merge what a previous process left, and start the background thread."""
        if not self._started:
            self.journal.start()
            self._started = True
        self.flush()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="riskengine-audit", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread, seal the journal and merge it (what the store refuses stays journalled)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._started:
            self.journal.close()
            self._started = False
            self.journal = AuditJournal(journal_dir(self.store), self.sync)
        try:
            merge_journal(self.store)
        except Exception:
            log.error("audit: store unavailable at shutdown; entries kept in %s", journal_dir(self.store))


def export_audit(store: Store, since: date | datetime | None, out: Path) -> int:
    """Write the audit log from ``since`` to ``out`` (.csv, .parquet or .xlsx by extension),
    atomically (temporary file, then rename). Returns the number of rows written."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise UsageError(f"--out must end in {', '.join(EXPORT_FORMATS)}; got {out.name!r}")
    try:
        merge_journal(store)  # rows of a stopped or killed server (a running one keeps its open segment)
    except Exception:
        log.warning("audit: could not merge the journal now; exporting it beside the store", exc_info=True)
    frame = store.audit(since)
    journalled = journalled_entries(store)
    if journalled.height:
        if since is not None:
            start = since if isinstance(since, datetime) else datetime(since.year, since.month, since.day)
            journalled = journalled.filter(pl.col("occurred_at") >= start)
        frame = (pl.concat([frame, journalled.cast(frame.schema)])  # type: ignore[arg-type]
                 .unique("entry_id", keep="first", maintain_order=True).sort("occurred_at", "entry_id"))

    def write(tmp: Path) -> None:
        if suffix == ".csv":
            exports.write_csv(frame, tmp, bom=False)
        elif suffix == ".parquet":
            frame.write_parquet(tmp)
        else:
            exports.write_xlsx(frame.rename(HEADERS_ZH), tmp, worksheet="审计日志", autofit=True)

    atomic_write(out, write)
    return frame.height
