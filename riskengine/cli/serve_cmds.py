"""The service commands: ``serve``, ``keys create|list|revoke`` and ``audit``."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from riskengine.cli import app
from riskengine.cli.options import parse_day
from riskengine.core.audit import export_audit, make_entry
from riskengine.core.config import get_settings
from riskengine.core.errors import UsageError
from riskengine.core.keys import new_key
from riskengine.core.store import Store

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store():  # type: ignore[no-untyped-def]
    settings = get_settings()
    return Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def _audit_key_change(action: str, key_id: str, detail: str) -> None:
    _store().append_audit([make_entry(action, resource=f"keys/{key_id}", status=200, key_name=_cli_actor(),
                                      role="cli", detail=detail)])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    lake: Annotated[Path | None, typer.Option(help="lake for what-if scoring by enterprise id")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    access_log: Annotated[bool, typer.Option(help="uvicorn access log on stderr")] = False,
) -> None:
    """Serve grades, explanations, plans and frequencies over HTTP (Authorization: Bearer KEY)."""

    if not 0 < port < 65536:
        raise UsageError(f"--port must be in 1..65535; got {port}")
    if lake is not None:
        if not (lake / "enterprises").is_dir():
            raise UsageError(f"--lake {lake}: not a lake (no enterprises/ table)")
        os.environ["RISKENGINE_SERVICE__LAKE_PATH"] = str(lake.resolve())
    # By import string: the riskengine package never imports api (shared/STYLE.md arrows).
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, log_level=log_level,
                access_log=access_log)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="inspector, credit_office, sector, admin or finance")],
    district: Annotated[list[str] | None, typer.Option(help="an inspector's district (repeat)")] = None,
    sector: Annotated[str | None, typer.Option(help="a sector key's pilot sector")] = None,
    name: Annotated[str | None, typer.Option(
        help="who holds the key (finance: the partner, as the enterprises' authorizations name it)")] = None,
) -> None:
    """Create a key and print it once (it is stored only as a hash)."""

    record, token = new_key(role, district or (), sector, name)
    _store().add_key(record)
    scope = ",".join(record.districts) or record.sector or "-"
    _audit_key_change("key_create", record.key_id,
                      f"role={record.role} scope={scope} name={record.name or ''}")
    print(f"created key {record.key_id} (role {record.role}, scope {scope}); it is shown only now:",
          file=sys.stderr)
    print(token)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, holders, roles, scopes; never the keys themselves)."""

    table = Table("key id", "name", "role", "scope", "created (UTC)", "revoked (UTC)")
    for key in _store().keys():
        table.add_row(key.key_id, key.name or "", key.role, ",".join(key.districts) or key.sector or "",
                      f"{key.created_at:%Y-%m-%d %H:%M}",
                      f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "")
    Console(width=120).print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key id shown by `keys list`")]) -> None:
    """Revoke a key (a running server refuses it within service.key_refresh_seconds)."""
    record = _store().revoke_key(key_id)
    _audit_key_change("key_revoke", record.key_id, f"role={record.role}")
    print(f"revoked key {record.key_id}", file=sys.stderr)


@app.command()
def audit(
    since: Annotated[str, typer.Option(help="first day to export, YYYY-MM-DD (UTC)")],
    out: Annotated[Path, typer.Option(help="FILE.csv, FILE.parquet or FILE.xlsx")],
) -> None:
    """Export the audit log (one row per access) from a day on."""

    day = parse_day(since, "--since")
    n = export_audit(_store(), day, out)
    print(f"wrote {n} audit entries since {day} to {out}", file=sys.stderr)
