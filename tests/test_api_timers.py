"""The service's background timers, run by their own clocks with short intervals (no test calls a
refresh or a flush by hand): the key and override refresh, the periodic audit flush, the automatic
reload after new grades or a new plan, and that setting that turns the reload checks off. Each has
a control with a long interval, so a test passes because of the timer, not by chance."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient

from api.state import KeyRing
from riskengine.core.audit import journalled_entries
from tests.api_helpers import E_WIRE_WUCHANG, World, grades_frame, make_world, plan_frame, serve

URL = f"/v1/enterprises/{E_WIRE_WUCHANG}"
NEW_AS_OF = date(2025, 10, 1)


def eventually(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _as_of(client: TestClient, world: World) -> str:
    response = client.get(URL, headers=world.headers("inspector"))
    assert response.status_code == 200
    return response.json()["as_of"]  # type: ignore[no-any-return]


def _revoke_and_ask(world: World, client: TestClient) -> Callable[[], bool]:
    headers = world.headers("credit_office")
    assert client.get(URL, headers=headers).status_code == 200
    world.store.revoke_key(world.key_ids["credit_office"])  # `riskengine keys revoke`, another process
    return lambda: client.get(URL, headers=headers).status_code == 401


def test_a_key_revoked_from_the_cli_is_refused_after_the_timed_key_refresh(tmp_path: Path) -> None:
    world = make_world(tmp_path, audit_flush_seconds=0.05, key_refresh_seconds=0.2, reload_check_seconds=0)
    with serve(world) as client:
        assert eventually(_revoke_and_ask(world, client))


def test_without_the_key_refresh_coming_round_a_revoked_key_still_works(tmp_path: Path) -> None:
    world = make_world(tmp_path, audit_flush_seconds=0.05, key_refresh_seconds=3600, reload_check_seconds=0)
    with serve(world) as client:
        refused = _revoke_and_ask(world, client)
        time.sleep(0.5)  # ten audit-thread ticks
        assert not refused()


def test_audit_rows_reach_the_store_by_the_periodic_flush(tmp_path: Path) -> None:
    world = make_world(tmp_path, audit_flush_seconds=0.05)
    with serve(world) as client:
        assert _as_of(client, world) == "2025-07-01"
        assert eventually(lambda: world.store.audit()["action"].to_list() == ["read_grade"])
        assert journalled_entries(world.store).height == 0  # merged, not merely journalled


def test_with_a_long_flush_interval_audit_rows_wait_in_the_journal(tmp_path: Path) -> None:
    world = make_world(tmp_path, audit_flush_seconds=3600)
    with serve(world) as client:
        _as_of(client, world)
        time.sleep(0.3)
        assert world.store.audit().height == 0
        assert journalled_entries(world.store)["action"].to_list() == ["read_grade"]
    assert world.store.audit()["action"].to_list() == ["read_grade"]  # and are written at shutdown


def test_with_reload_checks_off_the_timer_still_runs_but_new_grades_wait(tmp_path: Path) -> None:
    world = make_world(tmp_path, audit_flush_seconds=0.05, key_refresh_seconds=0.1, reload_check_seconds=0)
    with serve(world) as client:
        world.store.save_grades(grades_frame(NEW_AS_OF, version="8"))  # `riskengine score` meanwhile
        assert eventually(_revoke_and_ask(world, client))  # the timer ticked: the key refresh ran
        time.sleep(0.3)
        assert _as_of(client, world) == "2025-07-01"


def test_a_new_plan_saved_by_another_process_is_served_by_the_timed_reload_check(tmp_path: Path) -> None:
    world = make_world(tmp_path, audit_flush_seconds=0.05, reload_check_seconds=0.1)
    with serve(world) as client:
        def latest_period() -> str:
            response = client.get("/v1/inspection-plan", headers=world.headers("credit_office"))
            assert response.status_code == 200
            return response.json()["period"]  # type: ignore[no-any-return]

        assert latest_period() == "2025-07"
        world.store.save_plan(plan_frame(), {"period": "2025-08", "as_of": date(2025, 8, 1), "seed": 12})
        assert eventually(lambda: latest_period() == "2025-08")


class CountingStore:
    """A store stand-in that counts the key lookups an unknown key id causes."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    def key(self, key_id: str) -> None:
        self.lookups.append(key_id)


def test_unknown_key_ids_cost_at_most_five_store_lookups_a_second_and_one_per_id_per_two_seconds() -> None:
    store = CountingStore()
    ring = KeyRing(store)  # type: ignore[arg-type]
    started = time.monotonic()
    for i in range(50):
        assert ring.lookup_missing(f"{i:08x}") is None
    assert time.monotonic() - started < 1.0  # one budget window (the stand-in answers at once)
    assert store.lookups == [f"{i:08x}" for i in range(KeyRing.MISS_BUDGET)] and KeyRing.MISS_BUDGET == 5
    time.sleep(1.05)  # a new window: five more, but not the ids missed under two seconds ago
    for i in range(50):
        ring.lookup_missing(f"{i:08x}")
    assert store.lookups[5:] == [f"{i:08x}" for i in range(5, 10)]
    time.sleep(1.05)  # over MISS_TTL (2 s) since the first five: they may be asked again
    ring.lookup_missing("00000000")
    assert store.lookups[-1] == "00000000" and len(store.lookups) == 11 and KeyRing.MISS_TTL == 2.0
