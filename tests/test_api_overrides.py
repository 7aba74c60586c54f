"""Credit-office overrides: the served grade shows them until they expire, the engine's grade stays
visible, and they need a reason and a sensible expiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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


# --- withdrawing an override -----------------------------------------------------------------------


def withdraw(
    client: TestClient, world: World, override_id: int, reason: str = "录入错误，撤回",
    enterprise_id: str = E_WIRE_WUCHANG, role: str = "credit_office",
):
    return client.post(
        f"/v1/enterprises/{enterprise_id}/override/{override_id}/withdraw",
        json={"reason": reason},
        headers=world.headers(role),
    )


def test_a_withdrawn_override_stops_applying_and_the_engines_grade_is_served_again(
    client: TestClient, world: World
) -> None:
    made = override(client, world, "D").json()["override"]
    response = withdraw(client, world, made["override_id"])
    assert response.status_code == 200
    assert response.json()["grade"] == "C" and response.json()["override"] is None
    body = served(client, world)
    assert body["grade"] == "C" and body["override"] is None


def test_withdrawing_the_newest_override_serves_the_older_one_still_in_force(
    client: TestClient, world: World
) -> None:
    override(client, world, "D", days=30)
    newest = override(client, world, "A", days=5).json()["override"]
    response = withdraw(client, world, newest["override_id"])
    assert response.json()["grade"] == "D"
    assert served(client, world)["override"]["grade"] == "D"


def test_an_override_can_be_withdrawn_only_once(client: TestClient, world: World) -> None:
    made = override(client, world, "D").json()["override"]
    assert withdraw(client, world, made["override_id"]).status_code == 200
    again = withdraw(client, world, made["override_id"], reason="再次撤回")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "already withdrawn" in again.json()["detail"]


def test_an_expired_override_cannot_be_withdrawn(client: TestClient, world: World, clock: Clock) -> None:
    made = override(client, world, "D", days=10).json()["override"]
    clock.at = DAY0 + timedelta(days=10)
    response = withdraw(client, world, made["override_id"])
    assert response.status_code == 409
    assert "expired" in response.json()["detail"]


def test_withdrawing_another_enterprises_override_is_404_and_changes_nothing(
    client: TestClient, world: World
) -> None:
    from tests.api_helpers import E_FOOD_WUCHANG

    made = override(client, world, "D").json()["override"]
    response = withdraw(client, world, made["override_id"], enterprise_id=E_FOOD_WUCHANG)
    assert response.status_code == 404
    assert served(client, world)["grade"] == "D"


def test_withdrawing_an_unknown_override_is_404(client: TestClient, world: World) -> None:
    override(client, world, "D")
    assert withdraw(client, world, 999).status_code == 404


def test_withdrawing_an_override_of_an_ungraded_enterprise_is_404(client: TestClient, world: World) -> None:
    # Credit-office keys see every graded enterprise (no district scope), so the scope 404 they can
    # meet is that of an enterprise the service does not serve; it reads exactly like the others.
    from tests.api_helpers import NOBODY

    made = override(client, world, "D").json()["override"]
    hidden = withdraw(client, world, made["override_id"], enterprise_id=NOBODY)
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == client.get(
        f"/v1/enterprises/{NOBODY}", headers=world.headers("credit_office")).json()["detail"]


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_withdrawal_without_a_reason_is_refused_and_the_override_stays(
    client: TestClient, world: World, reason: str
) -> None:
    made = override(client, world, "D").json()["override"]
    response = withdraw(client, world, made["override_id"], reason=reason)
    assert response.status_code == 422
    assert "reason" in response.text
    assert served(client, world)["grade"] == "D"


@pytest.mark.parametrize("role", ["inspector", "sector", "admin"])
def test_only_the_credit_office_may_withdraw_an_override(client: TestClient, world: World, role: str) -> None:
    made = override(client, world, "D").json()["override"]
    response = withdraw(client, world, made["override_id"], role=role)
    assert response.status_code == 403
    assert served(client, world)["grade"] == "D"


def test_the_history_keeps_the_override_and_its_withdrawal(client: TestClient, world: World) -> None:
    made = override(client, world, "D").json()["override"]
    withdraw(client, world, made["override_id"], reason="误录")
    (record,) = client.get(
        f"/v1/enterprises/{E_WIRE_WUCHANG}/history", headers=world.headers("credit_office")
    ).json()["overrides"]
    assert (record["override_id"], record["grade"]) == (made["override_id"], "D")
    assert record["withdraw_reason"] == "误录"
    assert record["withdrawn_by"].startswith(world.key_ids["credit_office"])
    assert datetime.fromisoformat(record["withdrawn_at"]) == DAY0.replace(tzinfo=UTC)


def test_the_sector_listing_follows_a_withdrawal(client: TestClient, world: World) -> None:
    made = override(client, world, "A").json()["override"]
    withdraw(client, world, made["override_id"])
    listed = client.get(
        "/v1/sectors/wire_cable/enterprises", params={"grade": "A"}, headers=world.headers("sector")
    ).json()
    assert E_WIRE_WUCHANG not in [e["enterprise_id"] for e in listed["items"]]


def test_a_withdrawal_survives_a_restart(world: World) -> None:
    with serve(world) as first:
        first.app.dependency_overrides[now] = Clock()  # type: ignore[attr-defined]
        made = override(first, world, "D").json()["override"]
        withdraw(first, world, made["override_id"])
    with serve(world) as second:
        second.app.dependency_overrides[now] = Clock()  # type: ignore[attr-defined]
        assert served(second, world)["grade"] == "C"


def test_a_withdrawal_is_audited_with_the_actor_the_override_the_grade_change_and_the_reason(
    world: World,
) -> None:
    with serve(world) as client:
        client.app.dependency_overrides[now] = Clock()  # type: ignore[attr-defined]
        made = override(client, world, "D").json()["override"]
        withdraw(client, world, made["override_id"], reason="复核后撤回")
    log = world.store.audit()
    row = log.filter(log["action"] == "withdraw_override").row(0, named=True)
    assert (row["key_id"], row["role"]) == (world.key_ids["credit_office"], "credit_office")
    assert row["status"] == 200
    assert f"override {made['override_id']}" in row["detail"]
    assert "D->C" in row["detail"] and "复核后撤回" in row["detail"]
