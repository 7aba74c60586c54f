"""Finance partners read an enterprise's credit record only under its authorization (CONTRACT §9)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from riskengine.core.keys import new_key
from riskengine.core.store import utcnow
from riskengine.lake.ingest import ingest
from riskengine.supervision.policy import default_policy_text, parse_policy
from tests.api_helpers import (
    E_FOOD_WUCHANG,
    E_RETAIL_JIANGAN,
    E_WIRE_JIANGAN,
    E_WIRE_WUCHANG,
    NOBODY,
    WORLD,
    make_service,
    make_world,
)
from tests.share_helpers import write_source

PARTNER = "武汉农商银行 Wuhan Rural Commercial Bank"
TODAY = utcnow().date()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("credit-lake")
    recent = (TODAY - timedelta(days=60)).isoformat()
    src = write_source(
        tmp / "src",
        {
            "enterprises": [
                {
                    "enterprise_id": e,
                    "name": f"企业{i}",
                    "district": d,
                    "sector": s,
                    "established_on": "2015-01-01",
                    "status": "active",
                }
                for i, (e, (d, s, _, _)) in enumerate(WORLD.items())
            ],
            "penalties": [
                {
                    "case_id": "PEN-1",
                    "enterprise_id": E_WIRE_WUCHANG,
                    "decided_on": recent,
                    "severity": "moderate",
                    "fine_cny": 20000.0,
                    "category": "产品质量",
                    "dishonest_list": False,
                }
            ],
            "commitments": [
                {
                    "commitment_id": "C-1",
                    "enterprise_id": E_WIRE_WUCHANG,
                    "made_on": "2024-01-01",
                    "kind": "notification",
                    "due_on": "2024-06-30",
                    "status": "kept",
                    "status_changed_on": "2024-06-01",
                }
            ],
        },
    )
    ingest(src, tmp / "lake")
    return tmp / "lake"


@pytest.fixture
def world(tmp_path: Path, lake: Path):  # type: ignore[no-untyped-def]
    w = make_world(tmp_path, lake_path=lake)
    record, token = new_key("finance", name=PARTNER)
    w.store.add_key(record)
    other, other_token = new_key("finance", name="另一家银行 another bank")
    w.store.add_key(other)
    return dataclasses.replace(w, tokens={**w.tokens, "finance": token, "other_bank": other_token})


def bearer(world, role: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def authorize(client: TestClient, world, enterprise_id: str, **body: object):  # type: ignore[no-untyped-def]
    payload = {
        "partner": PARTNER,
        "scope": ["credit_record"],
        "granted_on": (TODAY - timedelta(days=10)).isoformat(),
        "expires_on": (TODAY + timedelta(days=365)).isoformat(),
        "consent_reference": "CONSENT-2026-001",
        **body,
    }
    return client.post(
        f"/v1/enterprises/{enterprise_id}/authorizations",
        json=payload,
        headers=bearer(world, "credit_office"),
    )


def same_404(a, b) -> bool:  # type: ignore[no-untyped-def]
    strip = lambda r: {k: v for k, v in r.json().items() if k != "instance"}  # noqa: E731
    return a.status_code == b.status_code == 404 and strip(a) == strip(b)


def test_without_an_authorization_a_partner_gets_the_unknown_enterprise_404(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(service=make_service(world))) as client:
        consenting = client.get(
            f"/v1/enterprises/{E_WIRE_WUCHANG}/credit-record", headers=bearer(world, "finance")
        )
        unknown = client.get(f"/v1/enterprises/{NOBODY}/credit-record", headers=bearer(world, "finance"))
        assert same_404(consenting, unknown)


def test_under_an_authorization_the_partner_reads_the_record_without_grade(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(service=make_service(world))) as client:
        created = authorize(client, world, E_WIRE_WUCHANG)
        assert created.status_code == 201 and created.json()["in_force"] is True
        got = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}/credit-record", headers=bearer(world, "finance"))
        assert got.status_code == 200
        body = got.json()
        assert [p["case_id"] for p in body["penalties"]] == ["PEN-1"]
        assert [c["status"] for c in body["commitments"]] == ["kept"]
        assert body["good_standing"]["in_good_standing"] is False
        assert body["grade"] is None and "score" not in body and "reasons" not in body
        assert body["authorization_id"] == created.json()["authorization_id"]
        clean = client.get(
            f"/v1/enterprises/{E_WIRE_JIANGAN}/credit-record", headers=bearer(world, "finance")
        )
        assert clean.status_code == 404  # authorized for one enterprise only


def test_good_standing_statement_for_a_clean_record(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(service=make_service(world))) as client:
        authorize(client, world, E_RETAIL_JIANGAN)
        body = client.get(
            f"/v1/enterprises/{E_RETAIL_JIANGAN}/credit-record", headers=bearer(world, "finance")
        ).json()
        assert body["good_standing"]["in_good_standing"] is True
        assert "无处于影响期内的行政处罚" in body["good_standing"]["text_zh"]


@pytest.mark.parametrize("window", [(-400, -10), (5, 365)], ids=["expired", "not-yet-granted"])
def test_an_authorization_out_of_its_dates_is_not_in_force(world, window: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(service=make_service(world))) as client:
        start, end = window
        assert (
            authorize(
                client,
                world,
                E_WIRE_WUCHANG,
                granted_on=(TODAY + timedelta(days=start)).isoformat(),
                expires_on=(TODAY + timedelta(days=end)).isoformat(),
            ).status_code
            == 201
        )
        got = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}/credit-record", headers=bearer(world, "finance"))
        assert got.status_code == 404


def test_another_partner_and_a_revoked_authorization_get_404(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(service=make_service(world))) as client:
        aid = authorize(client, world, E_WIRE_WUCHANG, authorization_id="AUTH-2026-7").json()[
            "authorization_id"
        ]
        assert aid == "AUTH-2026-7"
        path = f"/v1/enterprises/{E_WIRE_WUCHANG}/credit-record"
        assert client.get(path, headers=bearer(world, "other_bank")).status_code == 404
        assert client.get(path, headers=bearer(world, "finance")).status_code == 200
        revoke = f"/v1/enterprises/{E_WIRE_WUCHANG}/authorizations/{aid}/revoke"
        done = client.post(
            revoke, json={"reason": "企业撤回授权 consent withdrawn"}, headers=bearer(world, "credit_office")
        )
        assert done.status_code == 200 and done.json()["in_force"] is False
        assert client.get(path, headers=bearer(world, "finance")).status_code == 404
        again = client.post(revoke, json={"reason": "twice"}, headers=bearer(world, "credit_office"))
        assert again.status_code == 409
        listed = client.get(
            f"/v1/enterprises/{E_WIRE_WUCHANG}/authorizations", headers=bearer(world, "credit_office")
        ).json()
        assert [(a["authorization_id"], a["revoke_reason"]) for a in listed] == [
            (aid, "企业撤回授权 consent withdrawn")
        ]
        dup = authorize(client, world, E_WIRE_WUCHANG, authorization_id="AUTH-2026-7")
        assert dup.status_code == 409


def test_roles_that_may_not_read_or_record(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(service=make_service(world))) as client:
        assert (
            client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=bearer(world, "finance")).status_code
            == 403
        )
        assert (
            client.get(
                f"/v1/enterprises/{E_WIRE_WUCHANG}/credit-record", headers=bearer(world, "inspector")
            ).status_code
            == 403
        )
        assert (
            client.post(
                f"/v1/enterprises/{E_WIRE_WUCHANG}/authorizations", json={}, headers=bearer(world, "finance")
            ).status_code
            == 403
        )
        assert authorize(client, world, NOBODY).status_code == 404


def test_every_read_is_audited_and_the_history_names_the_partner(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(service=make_service(world))) as client:
        path = f"/v1/enterprises/{E_FOOD_WUCHANG}/credit-record"
        client.get(path, headers=bearer(world, "finance"))  # refused: no authorization yet
        aid = authorize(client, world, E_FOOD_WUCHANG).json()["authorization_id"]
        client.get(path, headers=bearer(world, "finance"))
        history = client.get(
            f"/v1/enterprises/{E_FOOD_WUCHANG}/history", headers=bearer(world, "credit_office")
        )
        reads = history.json()["credit_record_reads"]
        assert [(r["partner"], r["authorization_id"]) for r in reads] == [(PARTNER, aid)]
        assert reads[0]["read_at"].startswith(TODAY.isoformat())
    audit = world.store.audit().filter(action="read_credit_record")
    assert audit["status"].to_list() == [404, 200] and set(audit["role"]) == {"finance"}


def test_the_grade_is_included_only_where_the_policy_enables_it(world) -> None:  # type: ignore[no-untyped-def]
    enabled = parse_policy(
        default_policy_text().replace("grade_to_finance = false", "grade_to_finance = true")
    )
    service = make_service(world)
    service.policy_loader = lambda settings: enabled
    with TestClient(create_app(service=service)) as client:
        authorize(client, world, E_WIRE_WUCHANG)
        body = client.get(
            f"/v1/enterprises/{E_WIRE_WUCHANG}/credit-record", headers=bearer(world, "finance")
        ).json()
        assert body["grade"] == WORLD[E_WIRE_WUCHANG][2]


def test_a_finance_key_needs_the_partner_name_and_no_scope() -> None:
    from riskengine.core.errors import UsageError

    with pytest.raises(UsageError, match="--name"):
        new_key("finance")
    with pytest.raises(UsageError, match="authorizations"):
        new_key("finance", districts=["420106"], name=PARTNER)
    record, _ = new_key("finance", name=PARTNER)
    assert (record.role, record.name) == ("finance", PARTNER)


def test_authorization_dates_must_make_sense(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(service=make_service(world))) as client:
        bad = authorize(
            client,
            world,
            E_WIRE_WUCHANG,
            granted_on=date(2026, 5, 1).isoformat(),
            expires_on=date(2026, 5, 1).isoformat(),
        )
        assert bad.status_code == 422 and "expires_on" in bad.json()["detail"]


def test_keys_create_makes_a_finance_key_for_a_named_partner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from typer.testing import CliRunner

    from riskengine.cli import app as cli
    from riskengine.cli import main
    from riskengine.core.config import get_settings
    from riskengine.core.store import Store

    monkeypatch.setenv("RISKENGINE_STORE_PATH", str(tmp_path / "store.duckdb"))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as refused:  # the real entry point maps bad usage to exit 2
            main(["keys", "create", "--role", "finance"])
        assert refused.value.code == 2 and "--name" in capsys.readouterr().err
        made = CliRunner().invoke(cli, ["keys", "create", "--role", "finance", "--name", PARTNER])
        assert made.exit_code == 0 and made.stdout.strip().startswith("rk_")
        assert [(k.role, k.name) for k in Store(tmp_path / "store.duckdb").keys()] == [("finance", PARTNER)]
    finally:
        get_settings.cache_clear()


def test_authorizations_cli_adds_lists_and_revokes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from typer.testing import CliRunner

    from riskengine.cli import app as cli
    from riskengine.cli import main
    from riskengine.core.config import get_settings
    from riskengine.core.store import Store

    monkeypatch.setenv("RISKENGINE_STORE_PATH", str(tmp_path / "store.duckdb"))
    get_settings.cache_clear()
    try:
        add = [
            "authorizations",
            "add",
            E_WIRE_WUCHANG,
            "--partner",
            PARTNER,
            "--granted-on",
            (TODAY - timedelta(days=1)).isoformat(),
            "--expires-on",
            (TODAY + timedelta(days=90)).isoformat(),
            "--consent",
            "授权书 001",
            "--id",
            "AUTH-CLI-1",
        ]
        made = CliRunner().invoke(cli, add)
        assert made.exit_code == 0 and made.stdout.strip() == "AUTH-CLI-1"
        listed = CliRunner().invoke(cli, ["authorizations", "list", E_WIRE_WUCHANG])
        assert "AUTH-CLI-1" in listed.stdout and "in force" in listed.stdout
        revoked = CliRunner().invoke(
            cli, ["authorizations", "revoke", E_WIRE_WUCHANG, "AUTH-CLI-1", "--reason", "企业撤回"]
        )
        assert revoked.exit_code == 0 and "revoked" in revoked.stdout
        with pytest.raises(SystemExit) as bad:
            main(["authorizations", "add", "NOT-A-USCC", *add[3:-2]])
        assert bad.value.code == 2 and "NOT-A-USCC" in capsys.readouterr().err
        actions = Store(tmp_path / "store.duckdb").audit()["action"].to_list()
        assert actions == ["record_authorization", "revoke_authorization"]
    finally:
        get_settings.cache_clear()
