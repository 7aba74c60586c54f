"""API keys: shown once, stored only as hashes, listed without secrets, revocable — from the CLI and
over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from riskengine.cli import app as cli
from riskengine.core.config import get_settings
from riskengine.core.store import Store
from tests.api_helpers import E_WIRE_WUCHANG, World, make_world, serve


@pytest.fixture()
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI pointed at a store in tmp_path."""
    path = tmp_path / "riskengine.duckdb"
    monkeypatch.setenv("RISKENGINE_STORE_PATH", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def run(*args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, list(args))
    return result


def test_keys_create_prints_a_key_once_and_stores_only_its_hash(cli_store: Path) -> None:
    result = run("keys", "create", "--role", "inspector", "--district", "420106", "--name", "张三")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("rk_")
    with duckdb.connect(str(cli_store), read_only=True) as con:
        rows = con.execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 1
    assert all(token not in str(value) for value in rows[0])
    assert token.split("_", 2)[2].encode() not in cli_store.read_bytes()


def test_keys_list_shows_holders_and_scopes_but_never_keys_or_hashes(cli_store: Path) -> None:
    token = run(
        "keys", "create", "--role", "sector", "--sector", "wire_cable", "--name", "电线协会"
    ).stdout.strip()
    listed = run("keys", "list")
    assert listed.exit_code == 0
    assert "电线协会" in listed.stdout and "wire_cable" in listed.stdout
    stored_hash = Store(cli_store).keys()[0].key_hash
    assert token not in listed.stdout and stored_hash not in listed.stdout


def test_keys_revoke_marks_the_key_revoked(cli_store: Path) -> None:
    run("keys", "create", "--role", "credit_office")
    key_id = Store(cli_store).keys()[0].key_id
    result = run("keys", "revoke", key_id)
    assert result.exit_code == 0
    assert Store(cli_store).keys()[0].revoked_at is not None


def test_keys_revoke_refuses_the_last_admin_key(cli_store: Path) -> None:
    run("keys", "create", "--role", "admin")
    key_id = Store(cli_store).keys()[0].key_id
    result = run("keys", "revoke", key_id)
    assert result.exit_code == 1
    assert Store(cli_store).keys()[0].revoked_at is None


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "inspector"],
        ["--role", "sector", "--sector", "retail"],
        ["--role", "admin", "--district", "420106"],
        ["--role", "superuser"],
    ],
)
def test_keys_create_refuses_a_role_without_its_scope_or_with_a_foreign_one(
    cli_store: Path, args: list[str]
) -> None:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_info:  # the real entry point: README promises exit 2
        main(["keys", "create", *args])
    assert exit_info.value.code == 2
    assert not cli_store.exists() or Store(cli_store).keys() == []


def test_revoking_an_unknown_key_names_it(cli_store: Path) -> None:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "revoke", "deadbeef"])
    assert exit_info.value.code == 1


def test_a_key_created_by_the_cli_while_the_server_runs_works_at_once(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        from riskengine.core.keys import new_key

        record, token = new_key("credit_office")
        world.store.add_key(record)  # what `riskengine keys create` does, from another process
        response = client.get(
            f"/v1/enterprises/{E_WIRE_WUCHANG}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200


def _admin(world: World) -> dict[str, str]:
    return world.headers("admin")


def test_admin_creates_a_key_over_http_that_then_works(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        created = client.post(
            "/v1/admin/keys", json={"role": "inspector", "districts": ["420106"]}, headers=_admin(world)
        )
        assert created.status_code == 201
        token = created.json()["key"]
        response = client.get(
            f"/v1/enterprises/{E_WIRE_WUCHANG}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
        listed = client.get("/v1/admin/keys", headers=_admin(world))
        assert token not in listed.text
        assert all("key" not in k and "key_hash" not in k for k in listed.json())


def test_admin_revokes_a_key_over_http_with_immediate_effect(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        revoked = client.delete(f"/v1/admin/keys/{world.key_ids['inspector']}", headers=_admin(world))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        response = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
        assert response.status_code == 401


def test_an_http_key_request_with_a_foreign_scope_is_422(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        response = client.post(
            "/v1/admin/keys", json={"role": "sector", "sector": "retail"}, headers=_admin(world)
        )
        assert response.status_code == 422
        assert "pilot" in response.json()["detail"] or "sector" in response.json()["detail"]


def test_key_changes_from_the_cli_are_audited_and_a_refused_one_is_not(cli_store: Path) -> None:
    from riskengine.cli import main

    made = run("keys", "create", "--role", "inspector", "--district", "420106", "--name", "张三")
    assert made.exit_code == 0, made.output
    key_id = made.stdout.strip()[3:11]
    assert run("keys", "revoke", key_id).exit_code == 0
    with pytest.raises(SystemExit):
        main(["keys", "create", "--role", "superuser"])  # refused: no key, so no audit row
    audit = Store(cli_store).audit()
    assert audit.select("action", "resource", "status", "role").rows() == [
        ("key_create", f"keys/{key_id}", 200, "cli"), ("key_revoke", f"keys/{key_id}", 200, "cli")]
    assert audit["detail"].to_list() == ["role=inspector scope=420106 name=张三", "role=inspector"]
    assert all(name.startswith("cli") for name in audit["key_name"])
