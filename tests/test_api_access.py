"""Who may do what: each role against each endpoint, scope isolation, and the error shapes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api_helpers import (
    E_FOOD_WUCHANG,
    E_WIRE_JIANGAN,
    E_WIRE_WUCHANG,
    JIANGAN,
    NOBODY,
    WUCHANG,
    World,
    make_world,
    serve,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("access"))


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with serve(world) as c:
        yield c


SOON = str(datetime.now(UTC).date() + timedelta(days=30))

# (name, method, path, json body) — E_WIRE_WUCHANG is in every non-admin role's scope.
ENDPOINTS: dict[str, tuple[str, str, Any]] = {
    "grade": ("GET", f"/v1/enterprises/{E_WIRE_WUCHANG}", None),
    "explanation": ("GET", f"/v1/enterprises/{E_WIRE_WUCHANG}/explanation", None),
    "history": ("GET", f"/v1/enterprises/{E_WIRE_WUCHANG}/history", None),
    "plan": ("GET", "/v1/inspection-plan", None),
    "sector_listing": ("GET", "/v1/sectors/wire_cable/enterprises", None),
    "what_if": ("POST", "/v1/score", {"features": [{"inspections__count_365d": 2}]}),
    "override": (
        "POST",
        f"/v1/enterprises/{E_FOOD_WUCHANG}/override",
        {"grade": "C", "reason": "复核后调整", "expires_on": SOON},
    ),
    "reload": ("POST", "/v1/admin/reload", None),
    "keys": ("GET", "/v1/admin/keys", None),
}
ALLOWED = {
    "inspector": {"grade", "explanation", "history", "plan", "sector_listing"},
    "credit_office": {"grade", "explanation", "history", "plan", "sector_listing", "what_if", "override"},
    "sector": {"grade", "history", "sector_listing"},
    "admin": {"reload", "keys"},
}
CASES = [(role, name) for role in ALLOWED for name in ENDPOINTS]


@pytest.mark.parametrize(("role", "endpoint"), CASES, ids=[f"{r}-{e}" for r, e in CASES])
def test_each_role_reaches_exactly_its_endpoints(
    client: TestClient, world: World, role: str, endpoint: str
) -> None:
    method, path, body = ENDPOINTS[endpoint]
    response = client.request(method, path, json=body, headers=world.headers(role))
    if endpoint in ALLOWED[role]:
        assert response.status_code in (200, 201), response.text
    else:
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert role in response.json()["detail"]


def _without_instance(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "instance"}


@pytest.mark.parametrize("suffix", ["", "/explanation", "/history"])
def test_an_inspector_sees_another_districts_enterprise_exactly_as_a_nonexistent_one(
    client: TestClient, world: World, suffix: str
) -> None:
    hidden = client.get(f"/v1/enterprises/{E_WIRE_JIANGAN}{suffix}", headers=world.headers("inspector"))
    missing = client.get(f"/v1/enterprises/{NOBODY}{suffix}", headers=world.headers("inspector"))
    assert hidden.status_code == missing.status_code == 404
    assert _without_instance(hidden.json()) == _without_instance(missing.json())
    assert hidden.headers["content-type"] == missing.headers["content-type"]


def test_a_sector_partner_sees_another_sectors_enterprise_exactly_as_a_nonexistent_one(
    client: TestClient, world: World
) -> None:
    hidden = client.get(f"/v1/enterprises/{E_FOOD_WUCHANG}", headers=world.headers("sector"))
    missing = client.get(f"/v1/enterprises/{NOBODY}", headers=world.headers("sector"))
    assert hidden.status_code == missing.status_code == 404
    assert _without_instance(hidden.json()) == _without_instance(missing.json())


def test_a_sector_partner_cannot_list_another_sector_nor_tell_it_exists(
    client: TestClient, world: World
) -> None:
    other = client.get("/v1/sectors/food_related/enterprises", headers=world.headers("sector"))
    unknown = client.get("/v1/sectors/no_such_sector/enterprises", headers=world.headers("sector"))
    assert other.status_code == unknown.status_code == 404
    assert _without_instance(other.json()) == _without_instance(unknown.json())


def test_an_inspector_gets_only_their_districts_plan_rows(client: TestClient, world: World) -> None:
    body = client.get("/v1/inspection-plan", headers=world.headers("inspector")).json()
    assert body["total"] == 2
    assert {row["district"] for row in body["items"]} == {WUCHANG}


def test_an_inspector_asking_for_another_districts_plan_gets_404(client: TestClient, world: World) -> None:
    other = client.get(
        "/v1/inspection-plan", params={"district": JIANGAN}, headers=world.headers("inspector")
    )
    unknown = client.get(
        "/v1/inspection-plan", params={"district": "999999"}, headers=world.headers("inspector")
    )
    assert other.status_code == unknown.status_code == 404
    assert other.json()["detail"] == unknown.json()["detail"]


def test_an_inspectors_sector_listing_holds_only_their_districts(client: TestClient, world: World) -> None:
    body = client.get("/v1/sectors/wire_cable/enterprises", headers=world.headers("inspector")).json()
    assert [e["enterprise_id"] for e in body["items"]] == [E_WIRE_WUCHANG]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer rk_00000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_requests_without_a_valid_key_get_401_problem(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert set(response.json()) >= {"type", "title", "status", "detail", "instance"}


def test_a_key_with_a_valid_id_but_wrong_secret_is_refused(client: TestClient, world: World) -> None:
    forged = f"rk_{world.key_ids['credit_office']}_{'A' * 43}"
    response = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("bad_id", "reason"),
    [
        ("91420106MA4K0000", "18 characters; got 16"),
        ("91420106MA4K0000I1", "outside GB 32100-2015's alphabet: 'I'"),
        (E_WIRE_WUCHANG[:17] + ("0" if E_WIRE_WUCHANG[17] != "0" else "1"), "check character"),
    ],
)
def test_a_malformed_uscc_gets_422_with_the_reason(
    client: TestClient, world: World, bad_id: str, reason: str
) -> None:
    response = client.get(f"/v1/enterprises/{bad_id}", headers=world.headers("credit_office"))
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert body["status"] == 422 and body["title"] == "Invalid input"
    assert reason in body["detail"]
    assert body["instance"] == f"/v1/enterprises/{bad_id}"


def test_a_role_without_the_right_gets_403_before_its_input_is_checked(
    client: TestClient, world: World
) -> None:
    response = client.get("/v1/enterprises/not-a-uscc/explanation", headers=world.headers("sector"))
    assert response.status_code == 403


def test_a_what_if_batch_over_the_limit_gets_413(client: TestClient, world: World) -> None:
    rows = [{"inspections__count_365d": i % 3} for i in range(world.settings.service.max_batch + 1)]
    response = client.post("/v1/score", json={"features": rows}, headers=world.headers("credit_office"))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "at most 1000" in response.json()["detail"]


def test_a_malformed_body_gets_422_problem_listing_the_errors(client: TestClient, world: World) -> None:
    response = client.post(
        f"/v1/enterprises/{E_WIRE_WUCHANG}/override",
        json={"grade": "Z"},
        headers=world.headers("credit_office"),
    )
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "grade"), ("body", "reason")}


def test_health_and_metrics_need_no_key_and_hold_no_enterprise_data(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    metrics = client.get("/metrics").text
    assert "riskengine_http_requests_total" in metrics
    assert E_WIRE_WUCHANG not in metrics
