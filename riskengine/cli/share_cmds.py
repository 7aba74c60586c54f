"""``riskengine share`` (push the credit record to the credit platform), ``riskengine publish``
(what the bureau may publish on its website) and ``riskengine authorizations`` (enterprises'
consents for finance partners), CONTRACT §4 and §9."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from riskengine.cli import app
from riskengine.cli.serve_cmds import _cli_actor
from riskengine.core.audit import make_entry
from riskengine.core.config import get_settings
from riskengine.core.errors import UsageError
from riskengine.core.ids import uscc_problem
from riskengine.core.store import Store, utcnow
from riskengine.core.store.authorizations import Authorization, Authorizations
from riskengine.supervision.policy import load_policy
from riskengine.workflows import publish as publish_wf
from riskengine.workflows import share as share_wf


def _date(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} must be a date YYYY-MM-DD; got {text!r}") from None


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value else "never"


def _audit(action: str, resource: str, status: int, detail: str) -> None:
    """Who ran a push or a publication, when, and what it did (the audit log beside the API's)."""
    settings = get_settings()
    Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout).append_audit(
        [
            make_entry(
                action, resource=resource, status=status, key_name=_cli_actor(), role="cli", detail=detail
            )
        ]
    )


def _print_status(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no push yet (the ledger is empty)")
        return
    for r in rows:
        print(f"target       {r['target']}")
        print(f"last push    {_when(r['last_push'])}")
        print(f"sent         {r['sent_batches']} batches, {r['sent_records']} records")
        print(f"pending      {r['pending_batches']} batches, {r['pending_records']} records")
        print(f"failed       {r['failed_batches']} pending batches with failed tries")
        print(f"dead letters {len(r['dead_letters'])}")
        if "unplanned_records" in r:
            print(f"changed      {r['unplanned_records']} records in the lake not yet planned (next push)")
        for d in r["dead_letters"]:
            print(
                f"  batch {d['seq']} ({d['records']} records, {d['attempts']} tries, last "
                f"{_when(d['last_try_at'])}): {d['error']}"
            )


@app.command()
def share(
    lake: Annotated[Path | None, typer.Option(help="the lake folder (from `riskengine ingest`)")] = None,
    to: Annotated[str | None, typer.Option(help="a folder (file exchange) or an http(s):// endpoint")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="YYYY-MM-DD: records last changed before it count as already on the platform; records "
            "changed on or after it are sent (again)"
        ),
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="show last push, pending, failed, dead letters")
    ] = False,
    requeue_dead: Annotated[
        bool, typer.Option("--requeue-dead", help="put dead letters back into the queue for the next push")
    ] = False,
    batch_size: Annotated[int | None, typer.Option(help="records per batch (default: settings)")] = None,
    policy: Annotated[Path | None, typer.Option(help="policy file (default: settings or built-in)")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Push every credit record changed since the last push to the credit platform, as JSON Lines."""
    if output_format not in ("text", "json"):
        raise UsageError(f"--format must be text or json; got {output_format!r}")
    settings = get_settings()
    if status:
        rows = share_wf.share_status(settings, to, lake, load_policy(policy) if lake is not None else None)
        if output_format == "json":
            print(json.dumps(rows, default=str, ensure_ascii=False, indent=1))
        else:
            _print_status(rows)
        return
    if requeue_dead:
        n = share_wf.requeue_dead(settings, to)
        _audit("share_requeue_dead", to or "all targets", 200, f"requeued={n}")
        _err(f"requeued {n} dead batch(es): their records go out with the next push")
        return
    if lake is None or to is None:
        raise UsageError("share needs --lake LAKE and --to DIR|URL (or --status)")
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer; got {batch_size}")
    result = share_wf.push(
        settings, lake, to, load_policy(policy), since=_date("--since", since), batch_size=batch_size
    )
    summary = {
        "target": result.target,
        "planned_records": result.planned_records,
        "new_batches": len(result.new_batches),
        "sent_batches": result.sent_batches,
        "sent_records": result.sent_records,
        "pending_batches": result.pending_batches,
        "failed": result.failed,
        "dead": result.dead,
    }
    _audit(
        "share_push",
        result.target,
        200 if result.ok else 500,
        f"planned={result.planned_records} sent_batches={result.sent_batches} "
        f"sent_records={result.sent_records} failed={len(result.failed)} dead={len(result.dead)}",
    )
    if output_format == "json":
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        _err(
            f"{result.target}: {result.planned_records} changed records planned in "
            f"{len(result.new_batches)} new batch(es); sent {result.sent_batches} batch(es), "
            f"{result.sent_records} records"
        )
        for f in result.failed:
            _err(f"batch {f['seq']} failed and stays pending (retried first next time): {f['error']}")
        for d in result.dead:
            _err(f"batch {d['seq']} is a dead letter: {d['error']}")
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def publish(
    lake: Annotated[Path, typer.Option(help="the lake folder (from `riskengine ingest`)")],
    as_of: Annotated[str, typer.Option("--as-of", help="publish what is in its period on this day")],
    out: Annotated[Path, typer.Option(help="folder for index.html, records.csv and records.json")],
    policy: Annotated[Path | None, typer.Option(help="policy file (default: settings or built-in)")] = None,
) -> None:
    """Write what the bureau may publish: violation records and list entries in their publication period."""
    day = _date("--as-of", as_of) or date.min  # never None: --as-of is required
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    n = publish_wf.publish(lake, day, out, load_policy(policy))
    _audit("publish", str(out.resolve()), 200, f"as_of={day} records={n}")
    _err(f"wrote {n} published records as of {day} to {out}/index.html, records.csv, records.json")


auth_app = typer.Typer(
    help="Enterprises' authorizations for finance partners (质量信用金融+): add, list, revoke.",
    no_args_is_help=True,
)
app.add_typer(auth_app, name="authorizations")


def _authorizations() -> Authorizations:
    settings = get_settings()
    return Authorizations(Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout))


def _auth_line(a: Authorization) -> str:
    state = "revoked" if a.revoked_at else ("in force" if a.in_force(utcnow()) else "not in force")
    return (
        f"{a.authorization_id}  {a.partner}  {','.join(a.scope)}  {a.granted_on}..{a.expires_on}  "
        f"consent {a.consent_reference}  {state}"
    )


@auth_app.command("add")
def authorizations_add(
    enterprise_id: Annotated[str, typer.Argument(help="the enterprise's USCC")],
    partner: Annotated[str, typer.Option(help="the bank or guarantor, as its finance key is named")],
    granted_on: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    expires_on: Annotated[str, typer.Option(help="YYYY-MM-DD (first day it no longer holds)")],
    consent: Annotated[str, typer.Option(help="reference of the enterprise's signed consent")],
    authorization_id: Annotated[str | None, typer.Option("--id", help="the office's own number")] = None,
) -> None:
    """Record an enterprise's signed consent for a finance partner (prints its id)."""
    if get_settings().id_scheme == "uscc" and (problem := uscc_problem(enterprise_id)):
        raise UsageError(f"ENTERPRISE_ID {enterprise_id!r}: {problem}")
    granted, expires = _date("--granted-on", granted_on), _date("--expires-on", expires_on)
    record = _authorizations().add(
        enterprise_id,
        partner,
        ("credit_record",),
        granted or date.min,
        expires or date.min,
        consent,
        _cli_actor(),
        authorization_id=authorization_id,
    )
    _audit(
        "record_authorization",
        f"enterprises/{enterprise_id}/authorizations",
        201,
        f"authorization={record.authorization_id} partner={record.partner!r} {granted}..{expires}",
    )
    print(record.authorization_id)


@auth_app.command("list")
def authorizations_list(enterprise_id: Annotated[str, typer.Argument(help="the enterprise's USCC")]) -> None:
    """An enterprise's authorizations, revoked and expired ones too."""
    for a in _authorizations().of(enterprise_id):
        print(_auth_line(a))


@auth_app.command("revoke")
def authorizations_revoke(
    enterprise_id: Annotated[str, typer.Argument(help="the enterprise's USCC")],
    authorization_id: Annotated[str, typer.Argument(help="the authorization's id")],
    reason: Annotated[str, typer.Option(help="why it ends (required)")],
) -> None:
    """End an authorization now (the row stays, with who, when and why)."""
    record = _authorizations().revoke(enterprise_id, authorization_id, _cli_actor(), reason, utcnow())
    _audit(
        "revoke_authorization",
        f"enterprises/{enterprise_id}/authorizations/{authorization_id}",
        200,
        f"authorization={authorization_id} revoked: {reason.strip()}",
    )
    print(_auth_line(record))
