"""The early warnings, webhook subscriptions and the delivery log, in the serving store (DuckDB).

A record family of the serving store (same file, same connection rules: short transactions, retried
when another process holds the lock):

* ``warnings``: one row per raised warning. Its id is a hash of (rule, enterprise, subject), where
  the subject is what the warning is about (a licence, a complaint window, a penalty, a grade run …),
  so raising the same warning again adds nothing (idempotent). Acknowledgement (who, when, the
  action taken) is filled in once; ``planned_period`` records the plan it was escalated into.
* ``webhooks``: subscriptions (URL, signing secret, who created it, when revoked).
* ``webhook_deliveries``: every attempt to deliver a warning to a subscription, successful or not.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from riskengine.core.errors import ConflictError, FatalInputError, NotFoundError
from riskengine.core.store.base import StoreBase, utcnow

WARNING_SCHEMA: dict[str, pl.DataType] = {
    "warning_id": pl.String(),
    "enterprise_id": pl.String(),
    "district": pl.String(),
    "sector": pl.String(),
    "rule": pl.String(),
    "subject": pl.String(),
    "raised_on": pl.Date(),
    "text_zh": pl.String(),
    "text_en": pl.String(),
    "created_at": pl.Datetime("us"),
    "acknowledged_at": pl.Datetime("us"),
    "acknowledged_by": pl.String(),
    "action": pl.String(),
    "planned_period": pl.String(),
}
# What a rule evaluation produces; the store adds the id, creation time and acknowledgement.
RAISED_COLUMNS = ("enterprise_id", "district", "sector", "rule", "subject", "raised_on", "text_zh", "text_en")

DELIVERY_SCHEMA: dict[str, pl.DataType] = {
    "delivery_id": pl.String(),
    "subscription_id": pl.String(),
    "warning_id": pl.String(),
    "attempt": pl.Int32(),
    "sent_at": pl.Datetime("us"),
    "status_code": pl.Int32(),
    "ok": pl.Boolean(),
    "error": pl.String(),
}


def warning_id(rule: str, enterprise_id: str, subject: str) -> str:
    """The id of a warning: the same rule, enterprise and subject always give the same id."""
    digest = hashlib.sha256(f"{rule}\x1f{enterprise_id}\x1f{subject}".encode()).hexdigest()
    return f"W{digest[:15]}"


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription: warnings are POSTed to ``url``, signed with ``secret``."""

    subscription_id: str
    url: str
    secret: str
    created_by: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """Everything but the secret."""
        return {
            "subscription_id": self.subscription_id,
            "url": self.url,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "active": self.active,
        }


def _frame(
    con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    rows = con.execute(query, list(params)).fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row")


class WarningStore(StoreBase):
    """Early warnings, webhook subscriptions and the delivery log."""

    DDL = """
CREATE TABLE IF NOT EXISTS warnings (
    warning_id VARCHAR PRIMARY KEY,
    enterprise_id VARCHAR NOT NULL,
    district VARCHAR,
    sector VARCHAR,
    rule VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    raised_on DATE NOT NULL,
    text_zh VARCHAR,
    text_en VARCHAR,
    created_at TIMESTAMP NOT NULL,
    acknowledged_at TIMESTAMP,
    acknowledged_by VARCHAR,
    action VARCHAR,
    planned_period VARCHAR
);
CREATE TABLE IF NOT EXISTS webhooks (
    subscription_id VARCHAR PRIMARY KEY,
    url VARCHAR NOT NULL,
    secret VARCHAR NOT NULL,
    created_by VARCHAR,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    delivery_id VARCHAR PRIMARY KEY,
    subscription_id VARCHAR NOT NULL,
    warning_id VARCHAR NOT NULL,
    attempt INTEGER NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    status_code INTEGER,
    ok BOOLEAN NOT NULL,
    error VARCHAR
);
"""
    TABLES = ("warnings", "webhooks", "webhook_deliveries")

    # --- warnings ---------------------------------------------------------------------------

    def add_warnings(self, raised: pl.DataFrame, created_at: datetime | None = None) -> pl.DataFrame:
        """Store the warnings of ``raised`` (``RAISED_COLUMNS``) not stored before; returns those new
        ones with their ids (running the same evaluation twice stores and returns nothing the second
        time)."""
        missing = [c for c in RAISED_COLUMNS if c not in raised.columns]
        if missing:
            raise FatalInputError(f"warnings frame: missing column(s) {', '.join(missing)}")
        frame = raised.select([pl.col(c).cast(WARNING_SCHEMA[c]) for c in RAISED_COLUMNS])
        frame = frame.with_columns(
            pl.struct("rule", "enterprise_id", "subject")
            .map_elements(
                lambda r: warning_id(r["rule"], r["enterprise_id"], r["subject"]), return_dtype=pl.String
            )
            .alias("warning_id"),
            pl.lit(created_at or utcnow(), dtype=pl.Datetime("us")).alias("created_at"),
        ).unique("warning_id", keep="first", maintain_order=True)
        if frame.height == 0:
            return pl.DataFrame(schema=WARNING_SCHEMA)
        with self._write() as con:
            known = {
                r[0]
                for r in con.execute(
                    "SELECT warning_id FROM warnings WHERE warning_id IN (SELECT unnest(?))",
                    [frame["warning_id"].to_list()],
                ).fetchall()
            }
            new = frame.filter(~pl.col("warning_id").is_in(list(known)))
            if new.height:
                full = new.with_columns(
                    [
                        pl.lit(None, dtype=WARNING_SCHEMA[c]).alias(c)
                        for c in ("acknowledged_at", "acknowledged_by", "action", "planned_period")
                    ]
                )
                full = full.select(list(WARNING_SCHEMA))
                con.register("_incoming_warnings", full.to_arrow())
                con.execute(
                    f"INSERT INTO warnings SELECT {', '.join(WARNING_SCHEMA)} FROM _incoming_warnings"
                )
                con.unregister("_incoming_warnings")
        return new.with_columns(
            [
                pl.lit(None, dtype=WARNING_SCHEMA[c]).alias(c)
                for c in ("acknowledged_at", "acknowledged_by", "action", "planned_period")
            ]
        ).select(list(WARNING_SCHEMA))

    def stored_warnings(
        self,
        *,
        districts: Sequence[str] | None = None,
        open_only: bool = False,
        enterprise_id: str | None = None,
    ) -> pl.DataFrame:
        """Stored warnings, newest first; ``districts`` limits them to those districts (None: all)."""
        query = f"SELECT {', '.join(WARNING_SCHEMA)} FROM warnings WHERE 1 = 1"
        params: list[Any] = []
        if districts is not None:
            query += " AND district IN (SELECT unnest(?))"
            params.append(list(districts))
        if open_only:
            query += " AND acknowledged_at IS NULL"
        if enterprise_id is not None:
            query += " AND enterprise_id = ?"
            params.append(enterprise_id)
        with self._read() as con:
            if con is None:
                return pl.DataFrame(schema=WARNING_SCHEMA)
            return _frame(con, query + " ORDER BY raised_on DESC, warning_id", params, WARNING_SCHEMA)

    def stored_warning(self, warning_id_: str) -> dict[str, Any]:
        """One warning as a dict (NotFoundError if unknown)."""
        with self._read() as con:
            frame = (
                pl.DataFrame(schema=WARNING_SCHEMA)
                if con is None
                else _frame(
                    con,
                    f"SELECT {', '.join(WARNING_SCHEMA)} FROM warnings WHERE warning_id = ?",
                    [warning_id_],
                    WARNING_SCHEMA,
                )
            )
        if frame.height == 0:
            raise NotFoundError(f"no warning with id {warning_id_!r}")
        return frame.row(0, named=True)

    def acknowledge_warning(
        self,
        warning_id_: str,
        by: str,
        action: str,
        at: datetime | None = None,
        *,
        districts: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Record who acknowledged a warning and the action taken. NotFoundError for an unknown id (or
        one outside ``districts``), ConflictError if already acknowledged; check and update are one
        transaction."""
        if not action.strip():
            raise FatalInputError("acknowledging a warning needs the action taken")
        at = at or utcnow()
        with self._write() as con:
            row = con.execute(
                "SELECT district, acknowledged_at, acknowledged_by FROM warnings WHERE warning_id = ?",
                [warning_id_],
            ).fetchall()
            if not row or (districts is not None and row[0][0] not in set(districts)):
                raise NotFoundError(f"no warning with id {warning_id_!r}")
            if row[0][1] is not None:
                raise ConflictError(
                    f"warning {warning_id_} was already acknowledged at "
                    f"{row[0][1]:%Y-%m-%d %H:%M} by {row[0][2]}"
                )
            con.execute(
                "UPDATE warnings SET acknowledged_at = ?, acknowledged_by = ?, action = ? "
                "WHERE warning_id = ?",
                [at, by, action.strip(), warning_id_],
            )
        return self.stored_warning(warning_id_)

    def overdue_warnings(self, as_of: date, limit_days: int) -> pl.DataFrame:
        """Open warnings raised more than ``limit_days`` days before ``as_of`` (and raised before it)."""
        frame = self.stored_warnings(open_only=True)
        return frame.filter((pl.lit(as_of) - pl.col("raised_on")).dt.total_days() > limit_days)

    def mark_warnings_planned(self, warning_ids: Sequence[str], period: str) -> None:
        """Record the plan period the warnings were escalated into as mandatory items."""
        if not warning_ids:
            return
        with self._write() as con:
            con.execute(
                "UPDATE warnings SET planned_period = ? WHERE warning_id IN (SELECT unnest(?))",
                [period, list(warning_ids)],
            )

    # --- webhooks ---------------------------------------------------------------------------

    def add_webhook(self, url: str, created_by: str | None, secret: str | None = None) -> Subscription:
        """A new subscription (its secret generated unless given; show it to the subscriber once)."""
        if not url.startswith(("http://", "https://")):
            raise FatalInputError(f"webhook url must start with http:// or https://; got {url!r}")
        sub = Subscription(
            f"S{secrets.token_hex(6)}", url, secret or secrets.token_urlsafe(32), created_by, utcnow()
        )
        with self._write() as con:
            con.execute(
                "INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?)",
                [sub.subscription_id, sub.url, sub.secret, sub.created_by, sub.created_at, None],
            )
        return sub

    def webhook_subscriptions(self, *, active_only: bool = False) -> list[Subscription]:
        with self._read() as con:
            if con is None:
                return []
            rows = con.execute(
                "SELECT subscription_id, url, secret, created_by, created_at, revoked_at "
                "FROM webhooks ORDER BY created_at, subscription_id"
            ).fetchall()
        subs = [Subscription(*r) for r in rows]
        return [s for s in subs if s.active] if active_only else subs

    def revoke_webhook(self, subscription_id: str) -> Subscription:
        with self._write() as con:
            row = con.execute(
                "SELECT revoked_at FROM webhooks WHERE subscription_id = ?", [subscription_id]
            ).fetchall()
            if not row:
                raise NotFoundError(f"no webhook subscription with id {subscription_id!r}")
            if row[0][0] is None:
                con.execute(
                    "UPDATE webhooks SET revoked_at = ? WHERE subscription_id = ?",
                    [utcnow(), subscription_id],
                )
        return next(s for s in self.webhook_subscriptions() if s.subscription_id == subscription_id)

    def log_webhook_delivery(
        self,
        subscription_id: str,
        warning_id_: str,
        attempt: int,
        status_code: int | None,
        ok: bool,
        error: str | None,
    ) -> None:
        with self._write() as con:
            con.execute(
                "INSERT INTO webhook_deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    f"D{secrets.token_hex(8)}",
                    subscription_id,
                    warning_id_,
                    attempt,
                    utcnow(),
                    status_code,
                    ok,
                    error,
                ],
            )

    def webhook_deliveries(self, subscription_id: str | None = None) -> pl.DataFrame:
        """The delivery log, oldest first."""
        query = f"SELECT {', '.join(DELIVERY_SCHEMA)} FROM webhook_deliveries"
        params: list[Any] = []
        if subscription_id is not None:
            query += " WHERE subscription_id = ?"
            params.append(subscription_id)
        with self._read() as con:
            if con is None:
                return pl.DataFrame(schema=DELIVERY_SCHEMA)
            return _frame(con, query + " ORDER BY sent_at, delivery_id", params, DELIVERY_SCHEMA)

    def undelivered_warnings(self, subscription: Subscription) -> pl.DataFrame:
        """Warnings created since the subscription began that it has not yet received."""
        with self._read() as con:
            if con is None:
                return pl.DataFrame(schema=WARNING_SCHEMA)
            return _frame(
                con,
                f"SELECT {', '.join('w.' + c for c in WARNING_SCHEMA)} FROM warnings w "
                "WHERE w.created_at >= ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE "
                "d.warning_id = w.warning_id AND d.subscription_id = ? AND d.ok) "
                "ORDER BY w.created_at, w.warning_id",
                [subscription.created_at, subscription.subscription_id],
                WARNING_SCHEMA,
            )
