"""Credit-office overrides: the served grade shows them until they expire, the engine's grade stays
visible, and they need a reason and a sensible expiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.deps import now
from tests.api_helpers import E_WIRE_WUCHANG, World, make_world, serve

DAY0 = datetime(2026, 3, 1, 9, 0)


class Clock:
    def __init__(self) -> None:
        self.at = DAY0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def client(world: World, clock: Clock) -> Iterator[TestClient]:
    with serve(world) as c:
        c.app.dependency_overrides[now] = clock  # type: ignore[attr-defined]
        yield c


def override(
    client: TestClient, world: World, grade: str = "D", days: int = 10, reason: str = "现场检查发现重大隐患"
):
    return client.post(
        f"/v1/enterprises/{E_WIRE_WUCHANG}/override",
        json={"grade": grade, "reason": reason, "expires_on": str((DAY0 + timedelta(days=days)).date())},
        headers=world.headers("credit_office"),
    )


def served(client: TestClient, world: World, role: str = "inspector") -> dict:
    return client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers(role)).json()


def test_the_served_grade_shows_the_override_and_the_engines_grades_stay_visible(
    client: TestClient, world: World
) -> None:
    assert override(client, world, "D").status_code == 201
    body = served(client, world)
    assert body["grade"] == "D"
    assert body["scored_grade"] == "C" and body["model_grade"] == "C"
    assert body["override"]["reason"] == "现场检查发现重大隐患"
    assert body["override"]["created_by"].startswith(world.key_ids["credit_office"])


def test_the_frequency_follows_the_overridden_grade(client: TestClient, world: World) -> None:
    before = served(client, world)["frequency"]
    override(client, world, "D")
    after = served(client, world)["frequency"]
    assert after["ratio"] > before["ratio"]


def test_an_override_stops_applying_on_its_expiry_day(client: TestClient, world: World, clock: Clock) -> None:
    override(client, world, "A", days=10)
    clock.at = DAY0 + timedelta(days=9, hours=14)
    assert served(client, world)["grade"] == "A"
    clock.at = DAY0 + timedelta(days=10)
    body = served(client, world)
    assert body["grade"] == "C"
    assert body["override"] is None


def test_the_newest_override_in_force_wins(client: TestClient, world: World) -> None:
    override(client, world, "D", days=30)
    override(client, world, "B", days=5)
    assert served(client, world)["grade"] == "B"


def test_the_sector_listing_filters_on_the_served_grade(client: TestClient, world: World) -> None:
    override(client, world, "A")
    listed = client.get(
        "/v1/sectors/wire_cable/enterprises", params={"grade": "A"}, headers=world.headers("sector")
    ).json()
    assert E_WIRE_WUCHANG in [e["enterprise_id"] for e in listed["items"]]


def test_overrides_survive_a_restart(world: World) -> None:
    with serve(world) as first:
        first.app.dependency_overrides[now] = Clock()  # type: ignore[attr-defined]
        override(first, world, "D")
    with serve(world) as second:
        second.app.dependency_overrides[now] = Clock()  # type: ignore[attr-defined]
        assert served(second, world)["grade"] == "D"


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_override_without_a_reason_is_refused(client: TestClient, world: World, reason: str) -> None:
    response = override(client, world, reason=reason)
    assert response.status_code == 422
    assert "reason" in response.text
    assert served(client, world)["override"] is None


@pytest.mark.parametrize("days", [0, -3, 367])
def test_an_override_must_expire_after_today_and_within_the_limit(
    client: TestClient, world: World, days: int
) -> None:
    response = override(client, world, days=days)
    assert response.status_code == 422
    assert "expires_on" in response.json()["detail"]


def test_an_override_of_an_unknown_enterprise_is_404(client: TestClient, world: World) -> None:
    from tests.api_helpers import NOBODY

    response = client.post(
        f"/v1/enterprises/{NOBODY}/override",
        json={"grade": "D", "reason": "x", "expires_on": "2026-04-01"},
        headers=world.headers("credit_office"),
    )
    assert response.status_code == 404
