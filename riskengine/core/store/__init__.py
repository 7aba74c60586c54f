"""The serving store: one DuckDB file with grades, plans, overrides, API keys and the audit log.

What `riskengine score` / `riskengine plan` write and `riskengine serve` reads. One module per record
family, each with its own DDL (``grades``, ``plans``, ``overrides``, ``keys``, ``audit``, ``warnings``); the
connection, lock and transaction machinery is in ``base``. A new family is a new module with a
``StoreBase`` subclass (its ``DDL``, ``TABLES`` and methods), added to ``Store``'s bases below. The
families whose tables appear on their first write (``cases``, ``share_ledger``, ``authorizations``,
``sessions``) are ``lazy.LazyFamily`` subclasses opened on a ``Store``'s file (``CaseStore(store)``):
they read only their own tables, so a store written before them still reads.
Writes are transactions: ``save_grades`` replaces an as_of (delete + insert) atomically, so a reader
sees the old grades or the new ones, never a mix.
"""

from riskengine.core.contract import GRADES_SCHEMA
from riskengine.core.records import KeyRecord, Override, PlanRecord
from riskengine.core.store.audit import AUDIT_SCHEMA, AuditStore
from riskengine.core.store.base import StoreBase, StoreBusyError, utcnow
from riskengine.core.store.grades import GradeStore
from riskengine.core.store.keys import KeyStore
from riskengine.core.store.overrides import OverrideStore
from riskengine.core.store.plans import PlanStore
from riskengine.core.store.warnings import WarningStore


class Store(GradeStore, PlanStore, OverrideStore, KeyStore, AuditStore, WarningStore):
    """The serving store at ``path`` (created on first write): every record family in one file."""


__all__ = [
    "AUDIT_SCHEMA", "GRADES_SCHEMA", "KeyRecord", "Override", "PlanRecord", "Store", "StoreBase",
    "StoreBusyError", "utcnow",
]
