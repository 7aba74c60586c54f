"""Record families whose tables appear on their first write (cases, the share ledger, authorizations,
sign-in sessions), opened on a ``Store``'s file rather than among its bases.

Such a family is a ``StoreBase`` like the others: its first write creates the ``Store``'s tables and
its own (a step may write the audit log in its own transaction), while its reads check only its own
tables, so a store written before the family existed still reads (``Store``'s reads check all of
``Store``'s tables).
"""

from __future__ import annotations

from riskengine.core.store import Store
from riskengine.core.store.base import StoreBase


class LazyFamily(StoreBase):
    """A family on the file of ``store`` (its path and lock timeout; one process lock per file)."""

    def __init__(self, store: StoreBase) -> None:
        super().__init__(store.path, lock_timeout=store.lock_timeout)

    @classmethod
    def _ddl(cls) -> str:
        return "\n".join((Store._ddl(), super()._ddl()))
