"""What the service holds in memory, and how it is swapped on reload.

``Snapshot`` is an immutable view of the latest grades (sorted by enterprise id, with a NumPy index
for O(log n) lookups — 2,000,000 ids cost ~40 MB as fixed-width bytes, far less than a dict), the
champion model and the supervision policy. ``Service`` owns the store, the key ring, the override
book, the audit writer and metrics, and one reference to the current snapshot: a request reads that
reference once and uses the same snapshot to the end; ``reload`` builds a complete new snapshot and
then replaces the reference, so requests in flight finish on the old one and none fail.

Keys and overrides are not part of the snapshot: they change through their own endpoints (and CLI
commands) and are refreshed from the store in the background every ``key_refresh_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from api.metrics import Metrics
from api.throttle import FailedAuthThrottle
from models.registry import load_model
from riskengine.core.audit import AuditWriter
from riskengine.core.config import Settings
from riskengine.core.errors import NotFoundError, RiskEngineError
from riskengine.core.store import GRADES_SCHEMA, KeyRecord, Override, PlanRecord, Store, utcnow
from riskengine.core.store.cases import CaseStore
from riskengine.supervision.policy import load_policy
from riskengine.workflows.cases import overview
from riskengine.workflows.monitor import latest_path

if TYPE_CHECKING:
    from api.metrics import Metrics
    from models.artifact import CreditModel
    from riskengine.supervision.policy import Policy

log = logging.getLogger(__name__)

ModelLoader = Callable[[Settings], "CreditModel | None"]
PolicyLoader = Callable[[Settings], "Policy"]


def load_champion_or_none(settings: Settings) -> CreditModel | None:
    """The champion model, or None (grades are still served; what-if scoring answers 503)."""
    local_store = settings.mlruns_dir / "mlflow.db"
    if not settings.mlflow.tracking_uri and not local_store.exists():
        # Nothing was ever trained here: say so without creating an empty MLflow store.
        log.warning("no MLflow store at %s, so no champion model; POST /v1/score will answer 503",
                    local_store)
        return None

    try:
        return load_model("champion", settings=settings)
    except RiskEngineError as exc:
        log.warning("no champion model loaded (%s); POST /v1/score will answer 503", exc)
        return None


def load_default_policy(settings: Settings) -> Policy:
    return load_policy(settings.policy_path)


def _id_index(ids: pl.Series) -> np.ndarray:
    """Sorted ids as fixed-width UTF-8 bytes (byte order = Polars' string sort order)."""
    if ids.len() == 0:
        return np.array([], dtype="S1")
    return np.array([s.encode("utf-8") for s in ids.to_list()])


@dataclass(frozen=True)
class Snapshot:
    """The latest grades, model and policy, as one immutable unit."""

    grades: pl.DataFrame
    index: np.ndarray
    as_of: date | None
    model: CreditModel | None
    policy: Policy
    loaded_at: datetime
    _plans: dict[str, PlanRecord] = field(default_factory=dict, repr=False)
    _sectors: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)
    # Enterprises graded before but not now: id -> (district, sector), for scope checks without the store.
    former: dict[str, tuple[str | None, str | None]] = field(default_factory=dict, repr=False)
    _history: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, grades: pl.DataFrame, model: CreditModel | None, policy: Policy) -> Snapshot:
        grades = grades.sort("enterprise_id").rechunk()
        as_of = grades["as_of"].max() if grades.height else None
        return cls(grades, _id_index(grades["enterprise_id"]), as_of, model, policy,  # type: ignore[arg-type]
                   utcnow())

    @property
    def model_version(self) -> str | None:
        if self.model is not None:
            return str(self.model.version)
        if self.grades.height:
            return self.grades["model_version"][0]
        return None

    def position(self, enterprise_id: str) -> int | None:
        """Row number of an enterprise in ``grades``, or None."""
        key = enterprise_id.encode("utf-8")
        i = int(np.searchsorted(self.index, key))
        if i < len(self.index) and self.index[i] == key:
            return i
        return None

    def row(self, enterprise_id: str) -> dict[str, Any] | None:
        """The grades row of an enterprise as a dict, or None."""
        i = self.position(enterprise_id)
        return None if i is None else self.grades.row(i, named=True)

    def frequency(self, sector: str | None, grade: str) -> tuple[float, int]:
        return self.policy.frequency(sector or "default", grade)

    HISTORY_CACHE = 10_000

    def scope_of(self, enterprise_id: str) -> tuple[str | None, str | None] | None:
        """(district, sector) of an enterprise graded now or before, or None (never graded): known
        from memory, so scope is checked before the store is asked anything."""
        row = self.position(enterprise_id)
        if row is not None:
            return self.grades["district"][row], self.grades["sector"][row]
        return self.former.get(enterprise_id)

    def history(self, store: Store, enterprise_id: str) -> pl.DataFrame:
        """Every stored grade of one enterprise (cached per snapshot: history changes only with new
        grades, and new grades make a new snapshot)."""
        with self._lock:
            cached = self._history.get(enterprise_id)
        if cached is None:
            cached = store.grade_history(enterprise_id)
            with self._lock:
                if len(self._history) >= self.HISTORY_CACHE:
                    self._history.clear()
                self._history[enterprise_id] = cached
        return cached

    def sector_rows(self, sector: str) -> pl.DataFrame:
        """The grades of one sector (cached per snapshot), sorted by enterprise id."""
        with self._lock:
            cached = self._sectors.get(sector)
        if cached is None:
            cached = self.grades.filter(pl.col("sector") == sector)
            with self._lock:
                self._sectors[sector] = cached
        return cached

    def plan(self, store: Store, period: str | None) -> PlanRecord:
        """A stored plan (cached per snapshot; the latest period by default)."""
        key = period or "\0latest"
        with self._lock:
            cached = self._plans.get(key)
        if cached is None:
            cached = store.plan(period)
            order = [c for c in ("district", "rank") if c in cached.rows.columns]
            if order:  # sorted once here, so that requests only filter and slice
                cached = replace(cached, rows=cached.rows.sort(order, maintain_order=True).rechunk())
            with self._lock:
                self._plans[key] = cached
        return cached


class KeyRing:
    """The API keys, by key id, refreshed from the store."""

    MISS_TTL = 2.0
    MISS_BUDGET = 5

    def __init__(self, store: Store) -> None:
        self.store = store
        self._keys: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()
        self._misses: dict[str, float] = {}
        self._window_start = 0.0
        self._window_lookups = 0

    def refresh(self) -> None:
        keys = {k.key_id: k for k in self.store.keys()}
        with self._lock:
            self._keys = keys

    def lookup_missing(self, key_id: str) -> KeyRecord | None:
        """Look a key id unknown in memory up in the store (a key just made by `riskengine keys
        create`). Bounded, so guessing key ids cannot hammer the store: each id at most once per
        ``MISS_TTL`` seconds, and at most ``MISS_BUDGET`` store lookups a second in all."""
        now = time.monotonic()
        with self._lock:
            if now - self._misses.get(key_id, -1e9) < self.MISS_TTL:
                return None
            if now - self._window_start >= 1.0:
                self._window_start, self._window_lookups = now, 0
            if self._window_lookups >= self.MISS_BUDGET:
                return None
            self._window_lookups += 1
            if len(self._misses) > 10_000:
                self._misses.clear()
            self._misses[key_id] = now
        record = self.store.key(key_id)
        if record is not None:
            with self._lock:
                self._keys = {**self._keys, key_id: record}
                self._misses.pop(key_id, None)
        return record

    def get(self, key_id: str) -> KeyRecord | None:
        return self._keys.get(key_id)

    def add(self, record: KeyRecord) -> None:
        self.store.add_key(record)
        with self._lock:
            self._keys = {**self._keys, record.key_id: record}

    def revoke(self, key_id: str) -> KeyRecord:
        record = self.store.revoke_key(key_id)
        with self._lock:
            self._keys = {**self._keys, key_id: record}
        return record

    def all(self) -> list[KeyRecord]:
        return sorted(self._keys.values(), key=lambda k: (k.created_at, k.key_id))


class OverrideBook:
    """Grade overrides by enterprise id. Writes go to the store first, then to memory, under one
    lock with refreshes, so an override saved during a refresh is never dropped from memory."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_id: dict[str, list[Override]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            by_id: dict[str, list[Override]] = {}
            for o in self.store.overrides():
                by_id.setdefault(o.enterprise_id, []).append(o)
            self._by_id = by_id

    def add(self, enterprise_id: str, grade: str, reason: str, expires_on: date, created_by: str,
            created_at: datetime) -> Override:
        with self._lock:
            o = self.store.add_override(enterprise_id, grade, reason, expires_on, created_by, created_at)
            self._by_id = {**self._by_id, enterprise_id: [*self._by_id.get(enterprise_id, []), o]}
        return o

    def withdraw(self, enterprise_id: str, override_id: int, withdrawn_by: str, reason: str,
                 withdrawn_at: datetime) -> Override:
        """Withdraw one of the enterprise's overrides (store first, then memory; errors as
        ``Store.withdraw_override``: NotFoundError, ConflictError, FatalInputError)."""
        with self._lock:
            o = self.store.withdraw_override(override_id, withdrawn_by, reason, withdrawn_at,
                                             enterprise_id=enterprise_id)
            kept = [x for x in self._by_id.get(enterprise_id, []) if x.override_id != override_id]
            updated = sorted([*kept, o], key=lambda x: (x.created_at, x.override_id))
            self._by_id = {**self._by_id, enterprise_id: updated}
        return o

    def active(self, enterprise_id: str, at: date | datetime) -> Override | None:
        """The newest override of the enterprise in force at ``at`` (withdrawn ones are not, from the
        moment of their withdrawal; see ``Override.active_on``)."""
        for o in reversed(self._by_id.get(enterprise_id, ())):
            if o.active_on(at):
                return o
        return None

    def served(self, rows: pl.DataFrame, at: date | datetime) -> pl.DataFrame:
        """``rows`` (grades) with ``grade`` the served grade: an override's grade while one is in force,
        else the scored grade (the frame form of ``records.served_grade``). Overrides are few, so the
        book is walked rather than the rows."""
        overridden = {}
        for eid in self.enterprise_ids():
            active = self.active(eid, at)
            if active is not None:
                overridden[eid] = active.grade
        if not overridden:
            return rows
        ids = pl.Series(list(overridden), dtype=pl.String)
        grades = pl.Series(list(overridden.values()), dtype=pl.String)
        return rows.with_columns(
            pl.col("enterprise_id").replace_strict(ids, grades, default=pl.col("grade")).alias("grade"))

    def of(self, enterprise_id: str) -> list[Override]:
        """Every override of the enterprise, withdrawn and expired ones too, oldest first."""
        return list(self._by_id.get(enterprise_id, ()))

    def enterprise_ids(self) -> list[str]:
        return list(self._by_id)


class Service:
    """The running service: store, keys, overrides, audit, metrics and the current snapshot."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        model_loader: ModelLoader = load_champion_or_none,
        policy_loader: PolicyLoader = load_default_policy,
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)
        self.model_loader = model_loader
        self.policy_loader = policy_loader
        self.keys = KeyRing(self.store)
        self.overrides = OverrideBook(self.store)
        self.metrics: Metrics = Metrics()
        self.throttle = FailedAuthThrottle(settings.service.failed_auth_per_address,
                                           settings.service.failed_auth_per_key)
        self.metrics.watch_monitor(latest_path(settings))
        self.audit = AuditWriter(self.store, settings.service.audit_flush_seconds, on_tick=self._tick,
                                 sync=settings.service.audit_sync == "fdatasync")
        self._snapshot: Snapshot | None = None
        self._reload_lock = threading.Lock()
        self._started = False
        self._last_refresh = time.monotonic()
        self._last_check = time.monotonic()
        self._store_version: tuple[Any, ...] = ()
        self.disputed: frozenset[str] = frozenset()  # enterprises with an open objection (CONTRACT §5)

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            raise RuntimeError("service not started")
        return self._snapshot

    def build_snapshot(self) -> Snapshot:
        """Load the latest grades, the champion model and the policy into a new snapshot."""
        try:
            grades = self.store.latest_grades()
        except NotFoundError:
            log.warning("the store has no grades yet; enterprise lookups answer 404 until reload")
            grades = pl.DataFrame(schema=GRADES_SCHEMA)
        model = self.model_loader(self.settings)
        policy = self.policy_loader(self.settings)
        snap = Snapshot.build(grades, model, policy)
        snap.former.update(self.store.former_enterprises(snap.as_of))
        try:  # the latest plan is what inspectors ask for: load it now, not on the first request
            snap.plan(self.store, None)
        except NotFoundError:
            pass
        return snap

    def _publish(self, snap: Snapshot) -> None:
        self._snapshot = snap  # one reference swap: atomic for readers
        self.metrics.set_snapshot(snap.model_version, snap.grades.height)

    def start(self) -> None:
        """Load everything once (FastAPI lifespan) and start the audit thread."""
        if self._started:
            return
        self.store.initialise()
        self.reload()  # the first snapshot, keys and overrides, loaded as every reload loads them
        self.metrics.watch_audit(lambda: self.audit.pending)
        self.audit.start()
        self._started = True

    def reload(self) -> Snapshot:
        """Build a new snapshot fully, then swap it in (in-flight requests keep the old one)."""
        with self._reload_lock:
            self._store_version = self.store.content_version()  # before reading: a later save reloads again
            snap = self.build_snapshot()
            self.keys.refresh()
            self.overrides.refresh()
            self.refresh_cases()
            self._publish(snap)
            return snap

    def refresh_cases(self) -> None:
        """The enterprises with an open objection, and the case gauges, from the store."""
        cases = CaseStore(self.store)
        self.disputed = frozenset(cases.disputed())
        self.metrics.set_cases(overview(cases.all(), utcnow().date()))

    def _tick(self) -> None:
        """Pick up keys and overrides changed by other processes (CLI), every key_refresh_seconds, and
        new grades or plans saved by `riskengine score` / `plan`, every reload_check_seconds (the
        reload runs in its own thread, like POST /v1/admin/reload: requests keep the old snapshot)."""
        if time.monotonic() - self._last_refresh >= self.settings.service.key_refresh_seconds:
            self._last_refresh = time.monotonic()
            self.keys.refresh()
            self.overrides.refresh()
            self.refresh_cases()
        every = self.settings.service.reload_check_seconds
        if every and time.monotonic() - self._last_check >= every:
            self._last_check = time.monotonic()
            if self.store.content_version() != self._store_version and not self._reload_lock.locked():
                threading.Thread(target=self._auto_reload, name="riskengine-auto-reload", daemon=True).start()

    def _auto_reload(self) -> None:
        try:
            snap = self.reload()
        except Exception:  # keep serving the snapshot we have; the next check tries again
            log.exception("automatic reload after new grades or plans failed; still serving the old ones")
            return
        log.info("reloaded: new grades or plans in the store (as_of %s, model %s)",
                 snap.as_of, snap.model_version)

    def close(self) -> None:
        """Write every pending audit entry (FastAPI lifespan shutdown)."""
        self.audit.close()
        self._started = False
