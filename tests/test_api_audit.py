"""The audit log: every read of a grade or explanation, every override and key change — refused
ones too — with who, when, what and the result; nothing lost at shutdown; exported by the CLI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from riskengine.cli import app as cli
from riskengine.core.audit import AuditWriter, export_audit, journalled_entries, make_entry, merge_journal
from riskengine.core.config import get_settings
from riskengine.core.store import Store
from tests.api_helpers import E_WIRE_JIANGAN, E_WIRE_WUCHANG, NOBODY, make_world, serve


def test_every_access_is_audited_with_who_what_and_result_refusals_included(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))  # 200
        client.get(f"/v1/enterprises/{E_WIRE_JIANGAN}", headers=world.headers("inspector"))  # 404 scope
        client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}/explanation", headers=world.headers("sector"))  # 403
        client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}/explanation")  # 401
        client.get("/v1/enterprises/123", headers=world.headers("inspector"))  # 422
    log = world.store.audit()
    got = log.select("key_id", "role", "action", "resource", "status").rows()
    inspector, sector = world.key_ids["inspector"], world.key_ids["sector"]
    assert got == [
        (inspector, "inspector", "read_grade", f"/v1/enterprises/{E_WIRE_WUCHANG}", 200),
        (inspector, "inspector", "read_grade", f"/v1/enterprises/{E_WIRE_JIANGAN}", 404),
        (sector, "sector", "read_explanation", f"/v1/enterprises/{E_WIRE_WUCHANG}/explanation", 403),
        (None, None, "read_explanation", f"/v1/enterprises/{E_WIRE_WUCHANG}/explanation", 401),
        (inspector, "inspector", "read_grade", "/v1/enterprises/123", 422),
    ]
    assert log["occurred_at"].is_sorted() and log["occurred_at"].null_count() == 0


def test_a_refused_role_is_audited_with_its_key(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}/explanation", headers=world.headers("sector"))
    row = world.store.audit().row(0, named=True)
    assert (row["key_id"], row["role"], row["status"]) == (world.key_ids["sector"], "sector", 403)


def test_a_forged_key_is_audited_under_the_key_id_it_claimed(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    forged = f"rk_{world.key_ids['credit_office']}_{'B' * 43}"
    with serve(world) as client:
        client.get(f"/v1/enterprises/{NOBODY}", headers={"Authorization": f"Bearer {forged}"})
    row = world.store.audit().row(0, named=True)
    assert (row["key_id"], row["role"], row["status"]) == (world.key_ids["credit_office"], None, 401)


def test_an_override_is_audited_with_its_grade_and_reason(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        client.post(
            f"/v1/enterprises/{E_WIRE_WUCHANG}/override",
            json={"grade": "D", "reason": "举报核实", "expires_on": str(date.today() + timedelta(days=90))},
            headers=world.headers("credit_office"),
        )
    row = world.store.audit().row(0, named=True)
    assert row["action"] == "override_grade" and row["status"] == 201
    assert "C->D" in row["detail"] and "举报核实" in row["detail"]


def test_key_changes_over_http_are_audited(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        created = client.post(
            "/v1/admin/keys", json={"role": "credit_office"}, headers=world.headers("admin")
        )
        client.delete(f"/v1/admin/keys/{created.json()['key_id']}", headers=world.headers("admin"))
    actions = world.store.audit().select("action", "status", "role").rows()
    assert actions == [("key_create", 201, "admin"), ("key_revoke", 200, "admin")]
    assert created.json()["key"] not in world.store.audit()["detail"].str.join("").item()


def _hold_lock(path: Path) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import duckdb, sys
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        sys.stdin.readline()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_entries_that_cannot_be_written_at_shutdown_stay_journalled_and_are_merged_later(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.duckdb", lock_timeout=0.2)
    store.initialise()
    writer = AuditWriter(store, flush_seconds=3600)
    writer.record(make_entry("read_grade", resource="/v1/enterprises/x", status=200, key_id="k1"))
    holder = _hold_lock(store.path)  # e.g. a long `riskengine score` holds the store
    try:
        writer.close()
    finally:
        holder.communicate("\n")
    assert journalled_entries(store)["key_id"].to_list() == ["k1"]
    assert merge_journal(store) == 1
    assert store.audit()["key_id"].to_list() == ["k1"]
    assert journalled_entries(store).height == 0


def test_an_answered_request_is_already_in_the_durable_journal(tmp_path: Path) -> None:
    world = make_world(tmp_path)  # the store merge runs once an hour here
    with serve(world) as client:
        response = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
        assert response.status_code == 200
        journalled = journalled_entries(world.store)
        assert journalled.select("action", "status", "role").rows() == [("read_grade", 200, "inspector")]


def test_while_another_process_holds_the_store_requests_are_served_and_audit_waits(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.store.lock_timeout = 0.2
    with serve(world) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        holder = _hold_lock(world.store.path)  # e.g. `riskengine score` writing new grades
        try:
            response = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
            assert response.status_code == 200
            assert service.audit.flush() == 0  # could not write: kept, not lost
            assert service.audit.pending == 1
        finally:
            holder.communicate("\n")
        assert service.audit.flush() == 1
    assert world.store.audit()["status"].to_list() == [200]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_the_cli_exports_the_audit_log_since_a_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    store = Store(tmp_path / "riskengine.duckdb")
    store.append_audit(
        [
            make_entry("read_grade", status=200, key_id="old", occurred_at=datetime(2026, 1, 31, 23, 59)),
            make_entry("read_grade", status=404, key_id="new", occurred_at=datetime(2026, 2, 1, 0, 0)),
        ]
    )
    monkeypatch.setenv("RISKENGINE_STORE_PATH", str(store.path))
    get_settings.cache_clear()
    out = tmp_path / f"audit{suffix}"
    try:
        result = CliRunner().invoke(cli, ["audit", "--since", "2026-02-01", "--out", str(out)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    if suffix == ".csv":
        frame = pl.read_csv(out)
        assert frame["key_id"].to_list() == ["new"]
    elif suffix == ".parquet":
        assert pl.read_parquet(out)["key_id"].to_list() == ["new"]
    else:
        frame = pl.read_excel(out, engine="openpyxl")
        assert frame["密钥编号"].to_list() == ["new"]


def test_an_export_to_an_unknown_format_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    from riskengine.core.errors import UsageError

    with pytest.raises(UsageError, match=r"\.csv, \.parquet, \.xlsx"):
        export_audit(Store(tmp_path / "s.duckdb"), None, tmp_path / "audit.txt")
    assert list(tmp_path.iterdir()) == []


def test_a_request_whose_audit_row_cannot_be_written_is_not_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import riskengine.core.audit as audit_module

    world = make_world(tmp_path)
    with serve(world) as client:
        def full(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(audit_module.os, "fdatasync", full)
        refused = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
        monkeypatch.undo()
        served = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
    assert refused.status_code == 503 and "grade" not in refused.json()
    assert served.status_code == 200
