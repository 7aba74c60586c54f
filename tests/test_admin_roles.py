"""Every admin endpoint refuses every other role (403) and changes nothing when refused.

The list of admin endpoints is read from the app itself, so an endpoint added under /v1/admin later is
covered without editing this file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api_helpers import World, make_world, serve

NON_ADMIN = ("inspector", "credit_office", "sector")
NEW_KEY = {"role": "inspector", "districts": ["420106"], "name": "refused"}


def _admin_routes() -> list[tuple[str, str]]:
    paths = create_app().openapi()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() if path.startswith("/v1/admin")
                  for method in ops)


ADMIN_ROUTES = _admin_routes()


def test_the_admin_surface_holds_the_key_endpoints_and_reload() -> None:
    assert set(ADMIN_ROUTES) >= {
        ("GET", "/v1/admin/keys"),
        ("POST", "/v1/admin/keys"),
        ("DELETE", "/v1/admin/keys/{key_id}"),
        ("POST", "/v1/admin/reload"),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("admin-roles"))


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with serve(world) as c:
        yield c


def _call(client: TestClient, world: World, role: str, method: str, path: str):  # noqa: ANN202
    path = path.replace("{key_id}", world.key_ids["inspector"])
    body = NEW_KEY if method == "POST" and path.endswith("/keys") else None
    return client.request(method, path, json=body, headers=world.headers(role))


CASES = [(role, m, p) for role in NON_ADMIN for m, p in ADMIN_ROUTES]


@pytest.mark.parametrize(("role", "method", "path"), CASES, ids=[f"{r}-{m}-{p}" for r, m, p in CASES])
def test_every_non_admin_role_is_refused_every_admin_endpoint(
    client: TestClient, world: World, role: str, method: str, path: str
) -> None:
    response = _call(client, world, role, method, path)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert role in response.json()["detail"]


def test_refused_key_changes_leave_the_keys_as_they_were(client: TestClient, world: World) -> None:
    before = client.get("/v1/admin/keys", headers=world.headers("admin")).json()
    for role in NON_ADMIN:
        _call(client, world, role, "POST", "/v1/admin/keys")
        _call(client, world, role, "DELETE", "/v1/admin/keys/{key_id}")
    after = client.get("/v1/admin/keys", headers=world.headers("admin")).json()
    assert after == before
    assert all(k["name"] != "refused" for k in after)


def test_the_admin_creates_and_revokes_a_key(client: TestClient, world: World) -> None:
    created = client.post("/v1/admin/keys", json=NEW_KEY | {"name": "made by admin"},
                          headers=world.headers("admin"))
    assert created.status_code == 201, created.text
    key_id = created.json()["key_id"]
    revoked = client.delete(f"/v1/admin/keys/{key_id}", headers=world.headers("admin"))
    assert revoked.status_code == 200, revoked.text
