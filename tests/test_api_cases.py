"""The cases API: the credit office works cases; others see a case's existence in scope only."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from api.deps import now
from api.main import create_app
from api.state import Service
from riskengine.core.config import ServiceSettings, Settings
from riskengine.core.keys import new_key
from riskengine.core.store import Store
from riskengine.workflows import cases
from tests.case_helpers import E1, E2, E3, build_lake, rules_regrader


@pytest.fixture
def api(tmp_path: Path, monkeypatch):
    lake = build_lake(tmp_path)
    settings = Settings(home=tmp_path, service=ServiceSettings(lake_path=lake, audit_flush_seconds=3600.0))
    store = Store(settings.store_file, lock_timeout=5)
    store.save_grades(pl.concat([rules_regrader(lake, e, date(2025, 9, 1)) for e in (E1, E2, E3)]))
    tokens = {}
    for role, districts, sector in (("credit_office", [], None), ("inspector", ["420106"], None),
                                    ("sector", [], "wire_cable")):
        record, token = new_key(role, districts, sector, name=f"{role} tester")
        store.add_key(record)
        tokens[role] = {"Authorization": f"Bearer {token}"}
    # No champion here: decisions regrade by the hard rules alone.
    monkeypatch.setattr(cases, "champion_regrader", lambda settings: rules_regrader)
    app = create_app(service=Service(settings, store=store, model_loader=lambda s: None))

    async def fixed_now() -> datetime:
        return datetime(2025, 12, 31, 9, 0)

    app.dependency_overrides[now] = fixed_now
    with TestClient(app) as client:
        yield client, tokens, store


def open_objection(client: TestClient, headers: dict, eid: str = E3, **body) -> dict:
    payload = {"kind": "objection", "enterprise_id": eid, "received_on": "2025-09-29",
               "record_table": "list_entries", "record_id": "LST-3", "statement": "列入依据有误", **body}
    r = client.post("/v1/cases", json=payload, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_an_open_objection_marks_the_served_grade_disputed_until_decided(api) -> None:
    client, tokens, _ = api
    office = tokens["credit_office"]
    assert client.get(f"/v1/enterprises/{E3}", headers=office).json()["disputed"] is False
    case = open_objection(client, office)
    assert case["due_on"] == "2025-10-09"
    grade = client.get(f"/v1/enterprises/{E3}", headers=office).json()
    assert (grade["grade"], grade["disputed"]) == ("D", True)
    for step, on in (("accept", "2025-10-09"), ("uphold", "2025-10-10")):
        r = client.post(f"/v1/cases/{case['case_id']}/steps", json={"step": step, "reason": "核实", "on": on},
                        headers=office)
        assert r.status_code == 200, r.text
    grade = client.get(f"/v1/enterprises/{E3}", headers=office).json()
    assert (grade["grade"], grade["disputed"]) == ("A", False)  # voided and regraded at once


def test_a_wrong_transition_is_409_with_the_current_status(api) -> None:
    client, tokens, _ = api
    office = tokens["credit_office"]
    case = open_objection(client, office)
    url = f"/v1/cases/{case['case_id']}/steps"
    r = client.post(url, json={"step": "uphold", "reason": "x"}, headers=office)
    assert r.status_code == 409 and r.json()["current_status"] == "received"
    r = client.post(url, json={"step": "accept", "reason": ""}, headers=office)
    assert r.status_code == 422


def test_others_see_a_case_exists_in_scope_but_never_its_papers(api) -> None:
    client, tokens, _ = api
    office = tokens["credit_office"]
    in_scope = open_objection(client, office, E1, record_table=None, record_id=None, grade=True,
                              statement="私密陈述")
    out_of_scope = open_objection(client, office)  # E3 is in district 420102
    inspector = tokens["inspector"]
    seen = client.get(f"/v1/cases/{in_scope['case_id']}", headers=inspector).json()
    assert seen["status"] == "received" and "statement" not in seen and "documents" not in seen
    assert seen["steps"] == [{"step": "open", "status_after": "received", "on": "2025-09-29"}]
    assert client.get(f"/v1/cases/{out_of_scope['case_id']}", headers=inspector).status_code == 404
    assert client.get("/v1/cases/OBJ-2025-999999", headers=inspector).status_code == 404
    listed = client.get("/v1/cases", headers=inspector).json()
    assert [c["case_id"] for c in listed] == [in_scope["case_id"]]
    assert client.get("/v1/cases", headers=tokens["sector"]).json() == []  # no wire_cable cases
    body = {"kind": "objection", "enterprise_id": E1, "received_on": "2025-09-01", "grade": True,
            "statement": "x"}
    assert client.post("/v1/cases", json=body, headers=inspector).status_code == 403
    full = client.get(f"/v1/cases/{in_scope['case_id']}", headers=office).json()
    assert full["statement"] == "私密陈述"


def test_overview_and_gauges(api) -> None:
    client, tokens, _ = api
    office = tokens["credit_office"]
    open_objection(client, office)
    view = client.get("/v1/cases/overview", headers=office).json()
    assert view["open"]["objection"] == {"received": 1, "accepted": 0} and view["overdue"] == 1
    assert client.get("/v1/cases/overview", headers=tokens["inspector"]).status_code == 403
    metrics = client.get("/metrics").text
    assert 'riskengine_cases_open{kind="objection",status="received"} 1.0' in metrics
    assert 'riskengine_cases_overdue{kind="objection"} 1.0' in metrics


def test_every_case_request_and_step_is_audited(api) -> None:
    client, tokens, store = api
    case = open_objection(client, tokens["credit_office"])
    client.post(f"/v1/cases/{case['case_id']}/steps", json={"step": "accept", "reason": "材料齐全"},
                headers=tokens["credit_office"])
    steps = store.audit().filter(pl.col("resource") == f"case:{case['case_id']}")
    assert steps["action"].to_list() == ["cases.open", "cases.accept"]
