"""Early warnings: each rule fires on its threshold and not before, uses only what was visible
before as_of, routes to the district, is stored once, and reaches a signed webhook receiver."""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
import pytest

from riskengine.core.config import Settings, WebhookSettings
from riskengine.core.contract import TABLES
from riskengine.core.errors import ConflictError, NotFoundError
from riskengine.core.store import Store
from riskengine.supervision.policy import load_policy
from riskengine.workflows.warnings import (
    deliver,
    evaluate_warnings,
    overdue_plan_items,
    payload,
    sign,
    verify_signature,
)

D = date(2025, 6, 1)
RULES = load_policy(None).warnings
ENTERPRISES = [
    {
        "enterprise_id": "E1",
        "district": "420106",
        "sector": "wire_cable",
        "status": "active",
        "established_on": date(2015, 1, 1),
    },
    {
        "enterprise_id": "E2",
        "district": "420102",
        "sector": "retail",
        "status": "active",
        "established_on": date(2015, 1, 1),
    },
]
LIST_SCHEMA = {
    "entry_id": pl.String,
    "enterprise_id": pl.String,
    "list": pl.String,
    "reason": pl.String,
    "listed_on": pl.Date,
    "removed_on": pl.Date,
    "removal_reason": pl.String,
    "recorded_on": pl.Date,
}
REMOVAL_SCHEMA = {
    "removal_id": pl.String,
    "entry_id": pl.String,
    "removed_on": pl.Date,
    "removal_reason": pl.String,
    "recorded_on": pl.Date,
}
COMMIT_SCHEMA = {
    "commitment_id": pl.String,
    "enterprise_id": pl.String,
    "made_on": pl.Date,
    "kind": pl.String,
    "due_on": pl.Date,
    "status": pl.String,
    "status_changed_on": pl.Date,
    "recorded_on": pl.Date,
}


def tables(**rows: list[dict]) -> dict[str, pl.LazyFrame]:
    out = {}
    for name, spec in TABLES.items():
        data = rows.get(name, ENTERPRISES if name == "enterprises" else [])
        out[name] = pl.DataFrame(
            [{c: r.get(c) for c in spec.schema} for r in data], schema=spec.schema
        ).lazy()
    for name, schema in (
        ("list_entries", LIST_SCHEMA),
        ("commitments", COMMIT_SCHEMA),
        ("list_removals", REMOVAL_SCHEMA),
    ):
        if name in rows:
            out[name] = pl.DataFrame(
                [{c: r.get(c) for c in schema} for r in rows[name]], schema=schema
            ).lazy()
    return out


def rules_of(frame: pl.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(frame["enterprise_id"], frame["rule"], strict=True))


def licence(expires: date, **extra: object) -> dict:
    return {
        "license_id": "L1",
        "enterprise_id": "E1",
        "kind": "production_license",
        "issued_on": date(2020, 7, 1),
        "expires_on": expires,
        "status": "valid",
        "status_changed_on": date(2020, 7, 1),
        **extra,
    }


def test_licence_expiring_within_30_days_warns_and_routes_to_its_district():
    raised = evaluate_warnings(tables(licenses=[licence(D + timedelta(days=30))]), D, RULES)
    assert rules_of(raised) == [("E1", "licence_expiring")]
    row = raised.row(0, named=True)
    assert row["district"] == "420106"
    assert "2025-07-01" in row["text_zh"] and "expires on 2025-07-01" in row["text_en"]


def test_licence_expiring_in_31_days_or_already_renewed_or_revoked_does_not_warn():
    renewed = [
        licence(D + timedelta(days=10)),
        licence(date(2030, 6, 1), license_id="L2", issued_on=D - timedelta(1)),
    ]
    for lic in (
        [licence(D + timedelta(days=31))],
        renewed,
        [licence(D + timedelta(days=5), status="revoked", status_changed_on=D - timedelta(days=3))],
    ):
        assert evaluate_warnings(tables(licenses=lic), D, RULES).height == 0


def test_a_licence_revoked_on_as_of_is_not_known_yet_so_it_still_warns():
    lic = licence(D + timedelta(days=5), status="revoked", status_changed_on=D)
    assert rules_of(evaluate_warnings(tables(licenses=[lic]), D, RULES)) == [("E1", "licence_expiring")]


def complaints(recent: int, previous: int, recorded_late: bool = False) -> list[dict]:
    rows = [
        {
            "complaint_id": f"R{i}",
            "enterprise_id": "E2",
            "received_on": D - timedelta(days=5 + i),
            "recorded_on": D if recorded_late and i == 0 else None,
        }
        for i in range(recent)
    ]
    rows += [
        {"complaint_id": f"P{i}", "enterprise_id": "E2", "received_on": D - timedelta(days=100 + i)}
        for i in range(previous)
    ]
    return rows


@pytest.mark.parametrize(
    ("recent", "previous", "fires"), [(3, 0, True), (4, 2, True), (2, 0, False), (5, 3, False)]
)
def test_complaint_surge_needs_double_the_previous_rate_and_at_least_three(recent, previous, fires):
    raised = evaluate_warnings(tables(complaints=complaints(recent, previous)), D, RULES)
    assert rules_of(raised) == ([("E2", "complaint_surge")] if fires else [])


def test_a_complaint_recorded_on_as_of_does_not_count():
    assert evaluate_warnings(tables(complaints=complaints(3, 0, recorded_late=True)), D, RULES).height == 0


def test_new_serious_penalty_and_ordered_recall_warn_but_a_minor_one_does_not():
    pens = [
        {"case_id": "C1", "enterprise_id": "E1", "decided_on": D - timedelta(days=3), "severity": "serious"},
        {"case_id": "C2", "enterprise_id": "E2", "decided_on": D - timedelta(days=3), "severity": "minor"},
        {
            "case_id": "C3",
            "enterprise_id": "E2",
            "decided_on": D - timedelta(days=200),
            "severity": "serious",
        },
    ]
    recs = [
        {
            "recall_id": "Q1",
            "enterprise_id": "E2",
            "announced_on": D - timedelta(days=1),
            "mode": "ordered",
            "hazard": "high",
        },
        {
            "recall_id": "Q2",
            "enterprise_id": "E2",
            "announced_on": D - timedelta(days=1),
            "mode": "voluntary",
            "hazard": "high",
        },
    ]
    raised = evaluate_warnings(tables(penalties=pens, recalls=recs), D, RULES)
    assert sorted(raised["subject"].to_list()) == ["penalty:C1", "recall:Q1"]


def test_an_old_serious_penalty_entered_late_is_new_when_it_becomes_known():
    pen = [
        {
            "case_id": "C9",
            "enterprise_id": "E1",
            "decided_on": D - timedelta(days=300),
            "severity": "serious",
            "recorded_on": D - timedelta(days=2),
        }
    ]
    assert evaluate_warnings(tables(penalties=pen), D, RULES)["subject"].to_list() == ["penalty:C9"]


def test_grade_jump_of_two_steps_warns_one_step_does_not():
    grades = pl.DataFrame(
        {
            "enterprise_id": ["E1", "E2", "E1", "E2"],
            "as_of": [date(2025, 5, 1)] * 2 + [D] * 2,
            "grade": ["A", "B", "C", "C"],
        }
    )
    raised = evaluate_warnings(tables(), D, RULES, grades)
    assert rules_of(raised) == [("E1", "grade_jump")]
    assert "A" in raised["text_en"][0] and "C" in raised["text_en"][0]


def test_abnormal_listing_reaching_three_years_within_60_days_warns_unless_removed():
    entry = {
        "entry_id": "LE1",
        "enterprise_id": "E2",
        "list": "abnormal_operation",
        "listed_on": date(2022, 7, 15),
    }
    assert rules_of(evaluate_warnings(tables(list_entries=[entry]), D, RULES)) == [
        ("E2", "abnormal_listing_3y")
    ]
    removed = entry | {"removed_on": D - timedelta(days=1)}
    assert evaluate_warnings(tables(list_entries=[removed]), D, RULES).height == 0
    later = entry | {"listed_on": date(2022, 9, 1)}
    assert evaluate_warnings(tables(list_entries=[later]), D, RULES).height == 0
    removal = {"removal_id": "RM1", "entry_id": "LE1", "removed_on": D - timedelta(days=2)}
    assert evaluate_warnings(tables(list_entries=[entry], list_removals=[removal]), D, RULES).height == 0
    entered_late = removal | {"recorded_on": D}  # the removal was not known before D
    assert evaluate_warnings(tables(list_entries=[entry], list_removals=[entered_late]), D, RULES).height == 1


def test_commitment_due_within_30_days_or_breached_warns():
    rows = [
        {
            "commitment_id": "K1",
            "enterprise_id": "E1",
            "made_on": date(2025, 1, 1),
            "kind": "notification",
            "due_on": D + timedelta(days=20),
            "status": "open",
        },
        {
            "commitment_id": "K2",
            "enterprise_id": "E2",
            "made_on": date(2025, 1, 1),
            "kind": "repair",
            "due_on": D + timedelta(days=200),
            "status": "breached",
            "status_changed_on": D - timedelta(days=4),
        },
        {
            "commitment_id": "K3",
            "enterprise_id": "E2",
            "made_on": date(2025, 1, 1),
            "kind": "repair",
            "due_on": D + timedelta(days=20),
            "status": "kept",
            "status_changed_on": D - timedelta(days=4),
        },
    ]
    raised = evaluate_warnings(tables(commitments=rows), D, RULES)
    assert sorted(raised["subject"].to_list()) == ["commitment:K1:due", "commitment:K2:breached"]


def world_store(tmp_path) -> tuple[Store, Settings]:
    settings = Settings(
        home=tmp_path,
        webhooks=WebhookSettings(
            attempts=3, backoff_seconds=0.01, backoff_max_seconds=0.02, timeout_seconds=2
        ),
    )
    return Store(settings.store_file, lock_timeout=5), settings


def raised_example() -> pl.DataFrame:
    return evaluate_warnings(
        tables(licenses=[licence(D + timedelta(days=3))], complaints=complaints(3, 0)), D, RULES
    )


def test_storing_the_same_warnings_twice_adds_nothing(tmp_path):
    store, _ = world_store(tmp_path)
    first = store.add_warnings(raised_example())
    assert first.height == 2
    assert store.add_warnings(raised_example()).height == 0
    assert store.stored_warnings().height == 2


def test_inspectors_see_their_districts_and_acknowledge_once(tmp_path):
    store, _ = world_store(tmp_path)
    new = store.add_warnings(raised_example())
    mine = store.stored_warnings(districts=["420106"], open_only=True)
    assert mine["enterprise_id"].to_list() == ["E1"]
    other = new.filter(pl.col("district") == "420102")["warning_id"][0]
    with pytest.raises(NotFoundError):
        store.acknowledge_warning(other, "inspector", "visited", districts=["420106"])
    done = store.acknowledge_warning(
        mine["warning_id"][0], "inspector", "现场检查，已督促办理延续", districts=["420106"]
    )
    assert done["action"] == "现场检查，已督促办理延续" and done["acknowledged_by"] == "inspector"
    with pytest.raises(ConflictError):
        store.acknowledge_warning(mine["warning_id"][0], "inspector", "again")
    assert store.stored_warnings(districts=["420106"], open_only=True).height == 0


def test_unacknowledged_warnings_older_than_the_limit_become_plan_items(tmp_path):
    store, settings = world_store(tmp_path)
    store.add_warnings(raised_example())
    policy = load_policy(None)
    limit = policy.warnings.ack_limit_days
    assert overdue_plan_items(settings, D + timedelta(days=limit), policy).height == 0
    items = overdue_plan_items(settings, D + timedelta(days=limit + 1), policy)
    assert sorted(items["enterprise_id"].to_list()) == ["E1", "E2"]
    assert all("unacknowledged warning" in w for w in items["why"].to_list())


def test_signature_verifies_only_the_same_body_secret_and_time():
    body = b'{"a": 1}'
    header = sign("s3cret", 1_700_000_000, body)
    assert verify_signature("s3cret", header, body, now=1_700_000_010)
    assert not verify_signature("other", header, body, now=1_700_000_010)
    assert not verify_signature("s3cret", header, b'{"a": 2}', now=1_700_000_010)
    assert not verify_signature("s3cret", header, body, now=1_700_001_000)


def test_payload_carries_the_contract_fields():
    row = raised_example().with_columns(pl.lit("W1").alias("warning_id")).row(0, named=True)
    body = json.loads(payload(row))
    assert body["event"] == "warning.raised"
    assert {"warning_id", "enterprise_id", "district", "rule", "raised_on"} <= set(body["warning"])


class Receiver:
    """A webhook receiver on 127.0.0.1: answers the first ``fail_first`` POSTs with ``fail_status``."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[tuple[dict, bytes]] = []
        self.fail_first, self.calls = fail_first, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls += 1
                if outer.calls <= outer.fail_first:
                    self.send_response(fail_status)
                else:
                    outer.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_new_warnings_reach_the_receiver_signed_after_retries_and_the_log_shows_each_attempt(tmp_path):
    store, settings = world_store(tmp_path)
    receiver = Receiver(fail_first=2)
    try:
        sub = store.add_webhook(receiver.url, created_by="admin")
        store.add_warnings(raised_example())
        report = deliver(store, settings)
        assert (report.sent, report.failed) == (2, 0)
        assert len(receiver.received) == 2
        for headers, body in receiver.received:
            assert verify_signature(sub.secret, headers["X-Riskengine-Signature"], body)
        log = store.webhook_deliveries(sub.subscription_id)
        assert log["ok"].to_list().count(False) == 2 and log["ok"].sum() == 2
        assert 503 in log["status_code"].to_list()
        assert deliver(store, settings).sent == 0  # nothing new, nothing sent again
    finally:
        receiver.close()


def test_a_receiver_that_refuses_is_logged_and_retried_on_the_next_run(tmp_path):
    store, settings = world_store(tmp_path)
    receiver = Receiver(fail_first=10**6, fail_status=500)
    try:
        store.add_webhook(receiver.url, created_by="admin")
        store.add_warnings(raised_example())
        report = deliver(store, settings)
        # The first warning uses its three attempts; the unreachable subscriber gets nothing more this run.
        assert (report.sent, report.failed, report.skipped, report.attempts) == (0, 1, 1, 3)
        receiver.fail_first = 0
        assert deliver(store, settings).sent == 2
    finally:
        receiver.close()
