"""An override's expiry, one day either side of each limit: tomorrow and exactly the configured
maximum (366 days by default, and a configured 30) are accepted; today and one day more are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.deps import now
from tests.api_helpers import World, make_world, serve
from tests.test_api_overrides import Clock, override


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("expiry"))


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with serve(world) as c:
        c.app.dependency_overrides[now] = Clock()  # type: ignore[attr-defined]
        yield c


@pytest.mark.parametrize(("days", "status"), [(0, 422), (1, 201), (366, 201), (367, 422)])
def test_default_expiry_limit_both_sides(client: TestClient, world: World, days: int, status: int) -> None:
    assert override(client, world, days=days).status_code == status


@pytest.mark.parametrize(("days", "status"), [(30, 201), (31, 422)])
def test_configured_expiry_limit_both_sides(tmp_path: Path, days: int, status: int) -> None:
    world = make_world(tmp_path, max_override_days=30)
    with serve(world) as c:
        c.app.dependency_overrides[now] = Clock()  # type: ignore[attr-defined]
        assert override(c, world, days=days).status_code == status
