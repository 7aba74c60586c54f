"""Push the credit record to the city's credit platform (`riskengine share`, CONTRACT §9).

Every penalty (with its influence period), list entry, commitment and approved credit repair — and
the grade, only where the policy enables it — goes out as one JSON line
``{"uscc", "record_type", "record_id", "operation", "fields", "hash"}``, once per content: the
ledger in the serving store (``riskengine.core.store.share_ledger``) remembers what each record looked like
when it was planned, so a run sends only what changed since, and a crash or a failed batch neither
loses nor duplicates a record (the batch is sent again, identical, under the same idempotency key).

Two kinds of target:

* a folder (file exchange): ``batch-000001.jsonl`` … written atomically, then ``manifest.json``
  listing every batch with its id, record count and SHA-256; a batch written again keeps its name;
* an HTTP(S) endpoint: each batch POSTed as ``application/x-ndjson`` with ``Idempotency-Key`` (the
  batch id), ``X-Riskengine-Batch`` (its number) and ``X-Riskengine-Signature: t=UNIX,v1=HEX``, the
  HMAC-SHA256 of ``"{t}." + body`` under the shared key. 2xx is taken; 408, 425, 429, 5xx and
  network errors are retried with exponential back-off (tenacity); any other answer rejects the
  batch at once. A batch that fails all its tries stays pending (the run stops there, so later
  batches never overtake it) and becomes a dead letter after ``dead_after_runs`` failed runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import polars as pl
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from riskengine.core.config import Settings
from riskengine.core.errors import FatalInputError, NotFoundError, RiskEngineError, UsageError
from riskengine.core.files import atomic_write_text
from riskengine.core.signing import sign, verify  # noqa: F401 - receivers import verify from here
from riskengine.core.store import Store
from riskengine.core.store.share_ledger import PLANNED_SCHEMA, Batch, ShareLedger
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import Policy
from riskengine.workflows.credit_record import record_hash, share_records

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "riskengine-share/1"
SIGNATURE_HEADER = "X-Riskengine-Signature"
RETRY_STATUSES = frozenset({408, 425, 429})


class DeliveryError(RiskEngineError):
    """A batch the target did not take; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    target: str

    def deliver(self, batch: Batch, body: bytes, n_records: int) -> None: ...


class FolderTransport:
    """File exchange: one numbered JSON Lines file per batch plus a manifest, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.target = f"file:{folder.resolve()}"

    def _manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and isinstance(data.get("batches"), list):
                    return data
            except (OSError, ValueError):
                pass
        return {"format": MANIFEST_FORMAT, "batches": []}

    def deliver(self, batch: Batch, body: bytes, n_records: int) -> None:
        name = f"batch-{batch.seq:06d}.jsonl"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.folder / name, body.decode("utf-8"))
            manifest = self._manifest()
            entries = [b for b in manifest["batches"] if b.get("seq") != batch.seq]
            entries.append(
                {
                    "seq": batch.seq,
                    "file": name,
                    "batch_id": batch.batch_id,
                    "records": n_records,
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            manifest["batches"] = sorted(entries, key=lambda b: b["seq"])
            manifest["last_seq"] = manifest["batches"][-1]["seq"]
            manifest["records"] = sum(b["records"] for b in manifest["batches"])
            atomic_write_text(
                self.folder / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
            )
        except OSError as exc:
            raise DeliveryError(
                f"{self.folder}: cannot write batch {batch.seq}: {exc.strerror or exc}"
            ) from exc


class HttpTransport:
    """Batches POSTed with an idempotency key and an HMAC-SHA256 signature."""

    def __init__(self, url: str, secret: bytes, timeout: float, client: httpx.Client | None = None) -> None:
        self.url = url
        self.target = url
        self.secret = secret
        self.client = client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def deliver(self, batch: Batch, body: bytes, n_records: int) -> None:
        headers = {
            "Content-Type": "application/x-ndjson; charset=utf-8",
            "Idempotency-Key": batch.batch_id,
            "X-Riskengine-Batch": str(batch.seq),
            "X-Riskengine-Records": str(n_records),
            SIGNATURE_HEADER: sign(self.secret, int(time.time()), body),
        }
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"batch {batch.seq}: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return
        status = response.status_code
        detail = f"batch {batch.seq}: the platform answered {status} {response.reason_phrase}"
        raise DeliveryError(detail, permanent=not (status >= 500 or status in RETRY_STATUSES))


def transport_for(to: str, settings: Settings) -> Transport:
    """The target a ``--to`` value names: an http(s) URL, else a folder."""
    if to.startswith(("http://", "https://")):
        if settings.share.secret is None or not settings.share.secret.get_secret_value():
            raise UsageError(
                "an HTTP target needs the key shared with the platform: set RISKENGINE_SHARE__SECRET"
            )
        return HttpTransport(
            to, settings.share.secret.get_secret_value().encode("utf-8"), settings.share.timeout_seconds
        )
    if "://" in to:
        raise UsageError(f"--to must be a folder or an http(s):// URL; got {to!r}")
    folder = Path(to)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--to {to}: exists and is not a folder")
    return FolderTransport(folder)


def _line(row: dict[str, Any]) -> str:
    return json.dumps(
        {
            "uscc": row["uscc"],
            "record_type": row["record_type"],
            "record_id": row["record_id"],
            "operation": row["operation"],
            "fields": json.loads(row["fields"]),
            "hash": row["hash"],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def changed_lines(
    current: pl.DataFrame, planned: pl.DataFrame, since: date | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(lines to send, baseline rows) from the lake's records and the ledger's planned hashes.

    A record is sent when the ledger has no hash for it or a different one; a record the ledger
    planned that the lake no longer holds (voided) is withdrawn. With ``since``, records last
    changed before that day that were never planned count as already on the platform (baseline),
    and records changed on or after it are sent again even if delivered before.
    """
    key = ["record_type", "record_id"]
    joined = current.join(planned.select(*key, pl.col("hash").alias("_planned")), on=key, how="left")
    send = pl.col("_planned").is_null() | (pl.col("_planned") != pl.col("hash"))
    baseline = pl.DataFrame(schema=PLANNED_SCHEMA)
    if since is not None:
        old = pl.col("changed_on").is_not_null() & (pl.col("changed_on") < since)
        baseline = joined.filter(old & pl.col("_planned").is_null()).select(list(PLANNED_SCHEMA))
        send = (send & ~(old & pl.col("_planned").is_null())) | ~old
    rows = joined.filter(send).drop("_planned", "changed_on").to_dicts()
    gone = planned.join(current.select(key), on=key, how="anti")
    for row in gone.to_dicts():
        withdraw = record_hash(row["uscc"], row["record_type"], row["record_id"], "withdraw", {})
        if row["hash"] != withdraw:
            rows.append({**row, "operation": "withdraw", "fields": "{}", "hash": withdraw})
    lines = pl.DataFrame(
        [
            {
                "uscc": r["uscc"],
                "record_type": r["record_type"],
                "record_id": r["record_id"],
                "hash": r["hash"],
                "line": _line(r),
            }
            for r in rows
        ],
        schema={**PLANNED_SCHEMA, "line": pl.String()},
    )
    return lines, baseline


@dataclass
class PushResult:
    """What one `share` run did."""

    target: str
    planned_records: int = 0
    new_batches: list[int] = field(default_factory=list)
    sent_batches: int = 0
    sent_records: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    pending_batches: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.dead and self.pending_batches == 0


def _served_grades(store: Store) -> pl.DataFrame | None:
    """The latest grades with the credit office's overrides in force now applied (the served grade)."""
    try:
        grades = store.latest_grades()
    except NotFoundError:
        return None
    now = datetime.now(UTC).replace(tzinfo=None)
    served: dict[str, str] = {}
    for o in store.overrides():  # oldest first: the newest in force wins
        if o.active_on(now):
            served[o.enterprise_id] = o.grade
    if not served:
        return grades
    table = pl.DataFrame({"enterprise_id": list(served), "_override": list(served.values())})
    return (
        grades.join(table, on="enterprise_id", how="left")
        .with_columns(pl.coalesce("_override", "grade").alias("grade"))
        .drop("_override")
    )


def _target_id(to: str) -> str:
    return to if to.startswith(("http://", "https://")) else f"file:{Path(to).resolve()}"


def _current(store: Store, lake: Path, policy: Policy) -> pl.DataFrame:
    """Every credit record the platform should hold now (grades only where the policy enables it)."""
    tables = load_tables(lake)
    grades = _served_grades(store) if policy.sharing.grades_to_platform else None
    try:
        return share_records(tables, grades)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FatalInputError(f"{lake}: cannot read the credit records: {exc}") from exc


def push(
    settings: Settings,
    lake: Path,
    to: str,
    policy: Policy,
    *,
    since: date | None = None,
    batch_size: int | None = None,
    transport: Transport | None = None,
    on_batch: Callable[[Batch, str], None] | None = None,
) -> PushResult:
    """Plan the records changed since the last push and deliver every pending batch, in order."""
    transport = transport or transport_for(to, settings)
    store = Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)
    ledger = ShareLedger(store)
    started = datetime.now(UTC).replace(tzinfo=None)
    current = _current(store, lake, policy)
    result = PushResult(transport.target)

    def changes(planned: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        lines, baseline = changed_lines(current, planned, since)
        result.planned_records = lines.height
        return lines, baseline

    result.new_batches = ledger.plan(
        transport.target, changes, batch_size or settings.share.batch_size, since
    )
    cfg = settings.share
    try:
        for batch in ledger.batches(transport.target, ("pending",)):
            lines = ledger.lines(transport.target, batch.seq)
            body = ("\n".join(lines) + "\n").encode("utf-8")
            retrying = Retrying(
                stop=stop_after_attempt(cfg.max_attempts),
                wait=wait_exponential(multiplier=cfg.backoff_seconds, max=cfg.backoff_max_seconds),
                retry=retry_if_exception(lambda e: isinstance(e, DeliveryError) and not e.permanent),
                reraise=True,
            )
            try:
                retrying(transport.deliver, batch, body, len(lines))
            except DeliveryError as exc:
                tries = int(retrying.statistics.get("attempt_number", 1))
                state = ledger.mark_failed(
                    transport.target,
                    batch.seq,
                    tries,
                    str(exc),
                    permanent=exc.permanent,
                    dead_after_runs=cfg.dead_after_runs,
                )
                entry = {
                    "seq": batch.seq,
                    "batch_id": batch.batch_id,
                    "records": len(lines),
                    "error": str(exc),
                }
                if on_batch:
                    on_batch(batch, state)
                if state == "dead":
                    result.dead.append(entry)
                    continue  # later batches may go: a dead letter waits for `share --requeue-dead`
                result.failed.append(entry)
                break  # keep order: later batches wait for this one
            ledger.mark_sent(transport.target, batch.seq, int(retrying.statistics.get("attempt_number", 1)))
            result.sent_batches += 1
            result.sent_records += len(lines)
            if on_batch:
                on_batch(batch, "sent")
    finally:
        close = getattr(transport, "close", None)
        if close is not None:
            close()
    result.pending_batches = len(ledger.batches(transport.target, ("pending",)))
    ledger.record_run(
        transport.target,
        started,
        result.planned_records,
        result.sent_batches,
        result.sent_records,
        "ok" if result.ok else "failed",
    )
    return result


def share_status(
    settings: Settings, to: str | None = None, lake: Path | None = None, policy: Policy | None = None
) -> list[dict[str, Any]]:
    """The ledger's state per target (`share --status`); with ``lake`` (and ``policy``), also the
    records changed in the lake and not yet planned (``unplanned_records``)."""
    store = Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)
    ledger = ShareLedger(store)
    rows = ledger.status(_target_id(to) if to is not None else None)
    if lake is not None and policy is not None:
        current = _current(store, lake, policy)
        for row in rows:
            lines, _ = changed_lines(current, ledger.planned(row["target"]), None)
            row["unplanned_records"] = lines.height
    return rows


def requeue_dead(settings: Settings, to: str | None = None) -> int:
    """Put dead letters back into planning (`share --requeue-dead`)."""
    store = Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)
    return ShareLedger(store).requeue_dead(_target_id(to) if to is not None else None)
