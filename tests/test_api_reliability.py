"""What probing the service found, kept fixed: scoped plan meta, body limits, failed-key throttling,
the last admin key, key timestamps with an offset, 405 with Allow, and history's scope check."""

from __future__ import annotations

from pathlib import Path

from tests.api_helpers import (
    AS_OF,
    E_RETAIL_JIANGAN,
    E_WIRE_JIANGAN,
    E_WIRE_WUCHANG,
    JIANGAN,
    WUCHANG,
    make_world,
    plan_frame,
    serve,
)


def test_an_inspector_sees_only_their_districts_in_the_plan_meta(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    meta = {
        "period": "2025-08", "as_of": AS_OF.isoformat(), "seed": 3,
        "capacity": {WUCHANG: 5, JIANGAN: 7},
        "shortfalls": {JIANGAN: 2},
        "districts": [{"district": WUCHANG, "capacity": 5}, {"district": JIANGAN, "capacity": 7}],
        "carried_over": {"period": "2025-07", "period_start": "2025-07-01",
                         "enterprise_ids": [E_WIRE_WUCHANG, E_WIRE_JIANGAN, E_RETAIL_JIANGAN]},
        "grades_summary": [{"grade": "A", "enterprises": 2}],
        "warnings": [f"district {JIANGAN}: capacity 7 is short", f"district {WUCHANG}: fine", "general"],
    }
    world.store.save_plan(plan_frame(), meta)
    with serve(world) as client:
        seen = client.get("/v1/inspection-plan", params={"period": "2025-08"},
                          headers=world.headers("inspector")).json()["meta"]
        full = client.get("/v1/inspection-plan", params={"period": "2025-08"},
                          headers=world.headers("credit_office")).json()["meta"]
    assert JIANGAN not in str(seen) and E_WIRE_JIANGAN not in str(seen) and E_RETAIL_JIANGAN not in str(seen)
    assert seen["capacity"] == {WUCHANG: 5} and seen["shortfalls"] == {}
    assert seen["districts"] == [{"district": WUCHANG, "capacity": 5}]
    assert seen["carried_over"]["enterprise_ids"] == [E_WIRE_WUCHANG]
    assert "grades_summary" not in seen
    assert seen["warnings"] == [f"district {WUCHANG}: fine", "general"]
    assert full["capacity"] == {WUCHANG: 5, JIANGAN: 7} and len(full["carried_over"]["enterprise_ids"]) == 3


def _raw_post(client: object, path: str, body: bytes, headers: dict[str, str]) -> object:
    return client.post(path, content=body, headers={"Content-Type": "application/json", **headers})  # type: ignore[attr-defined]


def test_a_body_without_a_valid_key_is_refused_before_it_is_read(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    reads = []

    def body() -> object:
        reads.append(1)
        yield b'{"enterprise_ids": ["x"]}'

    with serve(world) as client:
        response = client.post("/v1/score", content=body(),
                               headers={"Content-Type": "application/json", "Content-Length": "25",
                                        "Authorization": "Bearer rk_00000000_" + "x" * 43})
    assert response.status_code == 401 and reads == []


def test_an_oversized_body_gets_413_after_authentication(tmp_path: Path) -> None:
    world = make_world(tmp_path, max_body_bytes=1000)
    big = b'{"enterprise_ids": [' + b'"x",' * 1000 + b'"x"]}'
    with serve(world) as client:
        declared = _raw_post(client, "/v1/score", big, world.headers("credit_office"))
        anonymous = _raw_post(client, "/v1/score", big, {})

        def chunks() -> object:  # no Content-Length: the limit applies while the body streams
            for i in range(0, len(big), 100):
                yield big[i:i + 100]

        streamed = client.post("/v1/score", content=chunks(),
                               headers={"Content-Type": "application/json", **world.headers("credit_office")})
        small = _raw_post(client, "/v1/score", b'{"enterprise_ids": []}', world.headers("credit_office"))
    assert declared.status_code == 413 and declared.headers["content-type"] == "application/problem+json"
    assert anonymous.status_code == 401
    assert streamed.status_code == 413 and streamed.headers["content-type"] == "application/problem+json"
    assert small.status_code == 422


def test_history_checks_scope_before_asking_the_store_and_caches_it(tmp_path: Path) -> None:
    from tests.api_helpers import NOBODY

    world = make_world(tmp_path)
    with serve(world) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        calls: list[str] = []
        real = service.store.grade_history
        service.store.grade_history = lambda eid: calls.append(eid) or real(eid)
        headers = world.headers("inspector")
        other = client.get(f"/v1/enterprises/{E_WIRE_JIANGAN}/history", headers=headers)
        unknown = client.get(f"/v1/enterprises/{NOBODY}/history", headers=headers)
        own = [client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}/history", headers=headers) for _ in range(3)]
    assert other.status_code == unknown.status_code == 404
    assert other.json()["detail"] == unknown.json()["detail"]
    assert all(r.status_code == 200 and len(r.json()["items"]) == 2 for r in own)
    assert calls == [E_WIRE_WUCHANG]


def test_an_address_sending_failed_keys_gets_429_with_retry_after(tmp_path: Path) -> None:
    world = make_world(tmp_path, failed_auth_per_address="3/minute")
    bad = {"Authorization": "Bearer rk_0000000a_" + "x" * 43}
    with serve(world) as client:
        url = f"/v1/enterprises/{E_WIRE_WUCHANG}"
        statuses = [client.get(url, headers=bad).status_code for _ in range(4)]
        refused = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
    assert statuses == [401, 401, 401, 429]
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60


def test_guessing_one_key_id_is_throttled_but_its_holder_gets_in(tmp_path: Path) -> None:
    world = make_world(tmp_path, failed_auth_per_key="2/minute")
    key_id = world.key_ids["inspector"]
    guess = {"Authorization": f"Bearer rk_{key_id}_" + "y" * 43}
    with serve(world) as client:
        statuses = [client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=guess).status_code
                    for _ in range(3)]
        holder = client.get(f"/v1/enterprises/{E_WIRE_WUCHANG}", headers=world.headers("inspector"))
    assert statuses == [401, 401, 429]
    assert holder.status_code == 200


def test_the_last_admin_key_cannot_be_revoked(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    admin = world.headers("admin")
    with serve(world) as client:
        last = client.delete(f"/v1/admin/keys/{world.key_ids['admin']}", headers=admin)
        second = client.post("/v1/admin/keys", json={"role": "admin", "name": "spare"}, headers=admin).json()
        now_allowed = client.delete(f"/v1/admin/keys/{world.key_ids['admin']}", headers=admin)
        spare = {"Authorization": f"Bearer {second['key']}"}
        again = client.delete(f"/v1/admin/keys/{second['key_id']}", headers=spare)
    assert last.status_code == 409 and "last active admin key" in last.json()["detail"]
    assert now_allowed.status_code == 200
    assert again.status_code == 409


def test_key_times_carry_a_time_zone_offset(tmp_path: Path) -> None:
    from datetime import datetime

    world = make_world(tmp_path)
    with serve(world) as client:
        keys = client.get("/v1/admin/keys", headers=world.headers("admin")).json()
        revoked = client.delete(f"/v1/admin/keys/{world.key_ids['sector']}",
                                headers=world.headers("admin")).json()
    for stamp in [k["created_at"] for k in keys] + [revoked["revoked_at"]]:
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp


def test_405_names_every_allowed_method(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve(world) as client:
        response = client.patch("/v1/admin/keys", headers=world.headers("admin"))
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"GET", "POST"}
