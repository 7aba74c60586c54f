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
