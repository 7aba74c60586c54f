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
