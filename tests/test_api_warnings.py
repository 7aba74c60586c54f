"""The warnings API: inspectors see and acknowledge their districts' warnings, the credit office all,
others nothing; webhook subscriptions are the admin's; every call is audited."""

from __future__ import annotations

from datetime import date

import polars as pl

from tests.api_helpers import E_RETAIL_JIANGAN, E_WIRE_WUCHANG, JIANGAN, WUCHANG, make_world, serve


def seed(world) -> dict[str, str]:
    raised = pl.DataFrame(
        {
            "enterprise_id": [E_WIRE_WUCHANG, E_RETAIL_JIANGAN],
            "district": [WUCHANG, JIANGAN],
            "sector": ["wire_cable", "retail"],
            "rule": ["licence_expiring", "complaint_surge"],
            "subject": ["licence:L1", "complaints:2025-07"],
            "raised_on": [date(2025, 7, 1)] * 2,
            "text_zh": ["许可证将到期", "投诉激增"],
            "text_en": ["licence expires", "complaint surge"],
        }
    )
    new = world.store.add_warnings(raised)
    return dict(zip(new["district"], new["warning_id"], strict=True))


def test_inspector_lists_only_their_districts_open_warnings(tmp_path):
    world = make_world(tmp_path)
    ids = seed(world)
    with serve(world) as client:
        mine = client.get("/v1/warnings", headers=world.headers("inspector"))
        everything = client.get("/v1/warnings", headers=world.headers("credit_office"))
        other = client.get(f"/v1/warnings?district={JIANGAN}", headers=world.headers("inspector"))
        sector = client.get("/v1/warnings", headers=world.headers("sector"))
    assert mine.status_code == 200
    assert [w["warning_id"] for w in mine.json()] == [ids[WUCHANG]]
    assert {w["warning_id"] for w in everything.json()} == set(ids.values())
    assert other.json() == []
    assert sector.status_code == 403


def test_acknowledging_records_the_action_closes_the_warning_and_is_audited(tmp_path):
    world = make_world(tmp_path)
    ids = seed(world)
    with serve(world) as client:
        done = client.post(
            f"/v1/warnings/{ids[WUCHANG]}/acknowledge",
            json={"action": "已约谈，督促办理延续"},
            headers=world.headers("inspector"),
        )
        again = client.post(
            f"/v1/warnings/{ids[WUCHANG]}/acknowledge",
            json={"action": "again"},
            headers=world.headers("inspector"),
        )
        open_now = client.get("/v1/warnings", headers=world.headers("inspector")).json()
        history = client.get("/v1/warnings?open=false", headers=world.headers("inspector")).json()
    assert done.status_code == 200 and done.json()["action"] == "已约谈，督促办理延续"
    assert world.key_ids["inspector"] in done.json()["acknowledged_by"]
    assert again.status_code == 409
    assert open_now == [] and history[0]["acknowledged_at"] is not None
    audit = world.store.audit()
    acks = audit.filter(pl.col("action") == "warning_acknowledge")
    assert acks.height == 2 and ids[WUCHANG] in acks["detail"].drop_nulls()[0]


def test_another_districts_warning_answers_like_an_unknown_one(tmp_path):
    world = make_world(tmp_path)
    ids = seed(world)
    with serve(world) as client:
        foreign = client.post(
            f"/v1/warnings/{ids[JIANGAN]}/acknowledge",
            json={"action": "x"},
            headers=world.headers("inspector"),
        )
        unknown = client.post(
            "/v1/warnings/Wnope/acknowledge", json={"action": "x"}, headers=world.headers("inspector")
        )
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["detail"] == unknown.json()["detail"]


def test_only_the_admin_manages_webhooks_and_sees_the_secret_once(tmp_path):
    world = make_world(tmp_path)
    with serve(world) as client:
        refused = client.post(
            "/v1/admin/webhooks",
            json={"url": "http://127.0.0.1:9/hook"},
            headers=world.headers("credit_office"),
        )
        made = client.post(
            "/v1/admin/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=world.headers("admin")
        )
        listed = client.get("/v1/admin/webhooks", headers=world.headers("admin")).json()
        log = client.get(
            f"/v1/admin/webhooks/{made.json()['subscription_id']}/deliveries", headers=world.headers("admin")
        )
        gone = client.delete(
            f"/v1/admin/webhooks/{made.json()['subscription_id']}", headers=world.headers("admin")
        )
    assert refused.status_code == 403
    assert made.status_code == 201 and len(made.json()["secret"]) > 20
    assert "secret" not in listed[0]
    assert log.status_code == 200 and log.json() == []
    assert gone.json()["active"] is False


def test_metrics_expose_the_latest_monitoring_report(tmp_path):
    import json

    from riskengine.workflows.monitor import latest_path

    world = make_world(tmp_path)
    report = {
        "months": [{"month": "2025-12", "psi_score": 0.04, "psi_features_max": 0.2, "grades": {}}],
        "pooled": {
            "grades": {
                "A": {"adverse_per_100": 3.5, "random_inspections": 400},
                "D": {"adverse_per_100": 41.0, "random_inspections": 90},
            },
            "monotone": True,
        },
        "alerts": [{"rule": "psi_sector", "detail": "x"}],
    }
    with serve(world) as client:
        before = client.get("/metrics").text
        path = latest_path(world.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report), encoding="utf-8")
        after = client.get("/metrics").text
    assert "riskengine_monitor_psi_score" not in before
    assert 'riskengine_monitor_adverse_per_100{grade="D"} 41.0' in after
    assert "riskengine_monitor_psi_score 0.04" in after and "riskengine_monitor_alerts 1.0" in after
