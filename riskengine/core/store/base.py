"""The store's machinery: short-lived connections, the process lock, retries and transactions.

Design for DuckDB's concurrency rule (one read-write *process* at a time, or many read-only ones):

* No process keeps the file open. Every method opens a connection, does its work in one
  transaction and closes it, so the API server and CLI commands take turns on the file lock.
* A call that meets another process's lock retries with back-off for ``lock_timeout`` seconds
  before raising :class:`StoreBusyError`; a long ``riskengine score`` therefore delays the
  server's audit flush (which retries later, see ``riskengine.core.audit``) instead of crashing either.
* Inside one process, calls on the same file are serialised by a lock, because DuckDB refuses a
  read-only and a read-write connection to the same file in one process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import polars as pl

from riskengine.core.errors import RiskEngineError

# One lock per store file in this process (DuckDB rejects mixed read-only/read-write connections
# to one file inside a process; serialising also keeps the file lock short).
_PROCESS_LOCKS: dict[str, threading.RLock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.RLock())


def utcnow() -> datetime:
    """Now in UTC, naive (the store keeps naive UTC timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


class StoreBusyError(RiskEngineError):
    """The store file stayed locked by another process for longer than the lock timeout."""

    exit_code = 1
    http_status = 503
    title = "Store busy"


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() or "different configuration" in text


def _arrow(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    rel = con.sql(query, params=list(params) if params is not None else None)
    if rel is None:  # pragma: no cover - only for statements without results
        return pl.DataFrame()
    frame = pl.from_arrow(rel.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)  # from_arrow of a Table is always a DataFrame
    return frame


def _first(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None) -> Any:
    """The first row of a query, or None (fetches everything: DuckDB 2 refuses new work on a
    connection with an unfinished result)."""
    rows = con.execute(query, list(params) if params is not None else []).fetchall()
    return rows[0] if rows else None


class StoreBase:
    """Connections, locking and transactions of the store at ``path``; each record family is a
    subclass with its own ``DDL`` and ``TABLES`` (collected over the class hierarchy)."""

    DDL: ClassVar[str] = ""
    TABLES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: Path, *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._lock = _process_lock(self.path)
        self._schema_ready = False

    @classmethod
    def _ddl(cls) -> str:
        """Every family's DDL, base classes first."""
        return "\n".join(k.__dict__["DDL"] for k in reversed(cls.__mro__) if k.__dict__.get("DDL"))

    @classmethod
    def _tables(cls) -> tuple[str, ...]:
        """Every family's tables (a store lacking one of them reads as empty until its first write)."""
        return tuple(t for k in reversed(cls.__mro__) for t in k.__dict__.get("TABLES", ()))

    # --- connections ------------------------------------------------------------------------

    @contextmanager
    def _connect(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A short-lived connection; ``None`` when reading a store that does not exist yet."""
        with self._lock:
            if not write and not self.path.exists():
                yield None
                return
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.01
            while True:
                try:
                    con = duckdb.connect(str(self.path), read_only=not write)
                    break
                except (duckdb.IOException, duckdb.ConnectionException) as exc:
                    if not _is_lock_error(exc):
                        raise RiskEngineError(f"{self.path}: cannot open the store: {exc}") from exc
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"{self.path}: the store is locked by another process "
                            f"(waited {self.lock_timeout:.0f} s); try again when it finishes"
                        ) from exc
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
            try:
                if write and not self._schema_ready:
                    con.execute(self._ddl())
                    self._schema_ready = True  # once per Store object: the DDL costs every flush
                yield con
            finally:
                con.close()

    @contextmanager
    def _read(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        with self._connect(write=False) as con:
            if con is not None:
                present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
                if not set(self._tables()) <= present:
                    yield None
                    return
            yield con

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect(write=True) as con:
            assert con is not None  # write connections always exist
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def initialise(self) -> None:
        """Create the store file and its tables if they do not exist yet."""
        with self._write():
            pass
