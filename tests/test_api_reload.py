"""POST /v1/admin/reload swaps in the newly promoted model and the latest grades; requests running
at the same time all succeed, each on either the old or the new state."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from riskengine.core.config import Settings
from tests.api_helpers import E_WIRE_WUCHANG, grades_frame, make_world, serve, tiny_model

NEW_AS_OF = date(2025, 10, 1)


class SlowPromotion:
    """Model loader: version 7 at start; on reload, a slow load of the promoted version 8."""

    def __init__(self) -> None:
        self.calls = 0
        self.loading = threading.Event()
        self.loading_at = float("inf")
        self.loaded_at = float("inf")

    def __call__(self, settings: Settings) -> object:
        self.calls += 1
        if self.calls == 1:
            return tiny_model("7")
        self.loading_at = time.monotonic()
        self.loading.set()
        time.sleep(0.5)  # requests keep arriving while the new state is built
        self.loaded_at = time.monotonic()  # the swap comes after this
        return tiny_model("8")


def test_requests_during_a_reload_all_succeed_and_later_ones_see_the_new_state(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    loader = SlowPromotion()
    with serve(world, loader) as client:
        world.store.save_grades(grades_frame(NEW_AS_OF, version="8"))  # `riskengine score` meanwhile
        stop = threading.Event()

        def hammer() -> list[tuple[float, float, int, str | None, str | None]]:
            seen = []
            while not stop.is_set():
                began = time.monotonic()
                r = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
                body = r.json()
                seen.append((began, time.monotonic(), r.status_code, body.get("as_of"),
                             body.get("model_version")))
            return seen

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(hammer) for _ in range(4)]
            time.sleep(0.05)
            reload = client.post("/v1/admin/reload", headers=world.headers("admin"))
            reloaded_at = time.monotonic()
            assert loader.loading.is_set()
            time.sleep(0.1)
            stop.set()
            per_thread = [f.result() for f in futures]
        results = [item for seen in per_thread for item in seen]

        assert reload.status_code == 200
        assert reload.json()["model_version"] == "8" and reload.json()["as_of"] == str(NEW_AS_OF)
        # Requests really overlapped the reload: some began after the new state started loading and
        # were answered before it was loaded (so before the swap, and before the reload returned).
        during = [r for r in results if r[0] >= loader.loading_at and r[1] <= loader.loaded_at]
        assert loader.loaded_at <= reloaded_at
        assert during, "no request overlapped the reload"
        assert {status for _, _, status, _, _ in results} == {200}
        # every answer is wholly the old state or wholly the new one (grades of version 1 as of July,
        # or of version 8 as of October), and during the reload the old one
        assert {(a, v) for _, _, _, a, v in results} <= {("2025-07-01", "1"), (str(NEW_AS_OF), "8")}
        assert {(a, v) for _, _, _, a, v in during} == {("2025-07-01", "1")}
        for seen in per_thread:  # once a thread has seen the new state, it never sees the old again
            states = [a for _, _, _, a, _ in seen]
            assert states == sorted(states, key=lambda a: a == str(NEW_AS_OF))
        after = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector")).json()
        assert after["as_of"] == str(NEW_AS_OF)
        assert client.get("/healthz").json()["model_version"] == "8"
        assert 'riskengine_model_info{version="8"} 1.0' in client.get("/metrics").text


def test_a_request_keeps_the_snapshot_it_started_with(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        before = service.snapshot
        world.store.save_grades(grades_frame(NEW_AS_OF, version="8"))
        service.reload()
        assert service.snapshot is not before
        assert before.as_of == date(2025, 7, 1)  # the old snapshot is untouched, still whole
        assert before.row(E_WIRE_WUCHANG)["as_of"] == date(2025, 7, 1)
        assert service.snapshot.row(E_WIRE_WUCHANG)["as_of"] == NEW_AS_OF


def _served_as_of(client, world) -> str:
    r = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
    assert r.status_code == 200
    return r.json()["as_of"]


def test_new_grades_saved_by_another_process_are_served_without_a_reload_call(tmp_path: Path) -> None:
    world = make_world(tmp_path, audit_flush_seconds=0.05, reload_check_seconds=0.1)
    with serve(world) as client:
        assert _served_as_of(client, world) == "2025-07-01"
        world.store.save_grades(grades_frame(NEW_AS_OF, version="8"))  # `riskengine score` meanwhile
        deadline = time.monotonic() + 10
        while _served_as_of(client, world) != str(NEW_AS_OF) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _served_as_of(client, world) == str(NEW_AS_OF)


def test_automatic_reload_can_be_turned_off(tmp_path: Path) -> None:
    world = make_world(tmp_path, audit_flush_seconds=0.05, reload_check_seconds=0)
    with serve(world) as client:
        world.store.save_grades(grades_frame(NEW_AS_OF, version="8"))
        time.sleep(0.6)
        assert _served_as_of(client, world) == "2025-07-01"
        assert client.post("/v1/admin/reload", headers=world.headers("admin")).status_code == 200
        assert _served_as_of(client, world) == str(NEW_AS_OF)
