"""The audit log cannot be changed: every way in — the store, its files, the HTTP API — is tried and
the rows already written stay exactly as they were (README: "The store has no way to change or delete
audit rows")."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from riskengine.core.audit import journal_dir, make_entry, merge_journal
from riskengine.core.store import Store
from tests.api_helpers import make_world, serve

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _seed(store: Store) -> pl.DataFrame:
    entries = [
        make_entry("read_grade", resource="/v1/enterprises/A", status=200, key_id="k1", key_name="张三",
                   role="inspector", occurred_at=datetime(2026, 1, 5, 9, 0)),
        make_entry("create_key", resource="/v1/admin/keys", status=201, key_id="k9", role="admin",
                   detail="made key k2", occurred_at=datetime(2026, 1, 5, 9, 1)),
        make_entry("read_grade", resource="/v1/enterprises/B", status=404, key_id="k1",
                   occurred_at=datetime(2026, 1, 5, 9, 2)),
    ]
    assert store.append_audit(entries) == 3
    return store.audit()


def _changed(seeded: pl.DataFrame) -> pl.DataFrame:
    """The same entries (id and time) with every other field rewritten."""
    return seeded.with_columns(
        pl.lit("tampered").alias("action"), pl.lit(0).cast(pl.Int32).alias("status"),
        pl.lit("nobody").alias("key_id"), pl.lit(None, pl.String).alias("detail"),
    )


def test_appending_stored_entry_ids_with_other_values_changes_no_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "riskengine.duckdb")
    seeded = _seed(store)
    assert seeded.height == 3
    assert store.append_audit(_changed(seeded)) == 0
    assert store.audit().equals(seeded)


def test_a_forged_journal_segment_cannot_overwrite_stored_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "riskengine.duckdb")
    seeded = _seed(store)
    folder = journal_dir(store)
    folder.mkdir()
    _changed(seeded).with_columns(pl.col("occurred_at").dt.to_string("%Y-%m-%dT%H:%M:%S")).write_ndjson(
        folder / "0000000001.jsonl"
    )
    assert merge_journal(store) == 0
    assert store.audit().equals(seeded)


def test_the_connection_every_read_uses_refuses_update_and_delete(tmp_path: Path) -> None:
    store = Store(tmp_path / "riskengine.duckdb")
    seeded = _seed(store)
    with store._read() as con:  # what every query of the service and the CLI goes through
        assert con is not None
        for statement in ("UPDATE audit_log SET status = 0", "DELETE FROM audit_log",
                          "DROP TABLE audit_log", "TRUNCATE audit_log"):
            with pytest.raises(duckdb.Error, match="read-only"):
                con.execute(statement)
    assert store.audit().equals(seeded)


def _every_write_route(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every POST/PUT/PATCH/DELETE route of the app, API and pages (read from the app itself)."""
    routes = set()
    for included in app.routes:
        for route in getattr(getattr(included, "original_router", None), "routes", ()):
            routes |= {(m, route.path) for m in getattr(route, "methods", ()) if m in WRITES}
    # and the places an audit endpoint would be, were one ever added
    for path in ("/v1/audit", "/v1/audit/{entry_id}", "/v1/admin/audit", "/v1/admin/audit/{entry_id}"):
        routes |= {(m, path) for m in WRITES}
    return sorted(routes)


def test_no_write_request_of_any_role_changes_or_deletes_an_audit_row(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    seeded = _seed(world.store)
    entry_id = seeded["entry_id"][0]
    statuses: set[int] = set()
    with serve(world) as client:
        routes = _every_write_route(client.app)
        # the app's own write routes are here, API and pages
        assert {("DELETE", "/v1/admin/keys/{key_id}"), ("POST", "/ui/login")} <= set(routes)
        for role in ("admin", "credit_office", "inspector", "sector"):
            for method, path in routes:
                # every path parameter names the audit entry: a route that deleted "by id" would hit it
                url = re.sub(r"\{[^}]+\}", entry_id, path)
                response = client.request(method, url, headers=world.headers(role),
                                          json={"entry_id": entry_id, "status": 0, "action": "tampered"})
                assert response.status_code < 500, (role, method, url, response.text)
                statuses.add(response.status_code)
    assert statuses & {404, 405} and statuses & {403}  # refused in each of the ways an API refuses
    after = world.store.audit()
    kept = after.filter(pl.col("entry_id").is_in(seeded["entry_id"].implode()))
    assert kept.equals(seeded)
    assert after.height > seeded.height  # the attempts themselves were audited, after the seeded rows
