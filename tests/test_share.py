"""`riskengine share`: every credit record reaches the platform once in effect (CONTRACT §9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from riskengine.cli import main
from riskengine.core.config import Settings, ShareSettings
from riskengine.core.contract import GRADES_SCHEMA
from riskengine.core.store import Store
from riskengine.supervision.policy import default_policy_text, load_policy, parse_policy
from riskengine.workflows.credit_record import record_hash
from riskengine.workflows.share import push, share_status, sign, verify
from tests.share_helpers import SECRET, add_rows, make_lake, receiver, uscc

ROOT = Path(__file__).resolve().parents[1]


def settings(tmp_path: Path, **share: object) -> Settings:
    return Settings(
        home=tmp_path,
        share=ShareSettings(**{"secret": SECRET, "backoff_seconds": 0.001, "batch_size": 5, **share}),
    )


def lines_of(folder: Path) -> list[dict]:
    out = []
    for f in sorted(folder.glob("batch-*.jsonl")):
        out += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]
    return out


def test_folder_push_writes_numbered_batches_each_line_with_the_contract_fields(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    result = push(settings(tmp_path), lake, str(tmp_path / "out"), load_policy())
    files = sorted(p.name for p in (tmp_path / "out").glob("batch-*.jsonl"))
    assert files == ["batch-000001.jsonl", "batch-000002.jsonl", "batch-000003.jsonl"]
    lines = lines_of(tmp_path / "out")
    assert result.sent_records == len(lines) == 12
    first = lines[0]
    assert list(first) == ["uscc", "record_type", "record_id", "operation", "fields", "hash"]
    assert first["hash"] == record_hash(
        first["uscc"], first["record_type"], first["record_id"], first["operation"], first["fields"]
    )
    assert {r["record_type"] for r in lines} == {"penalty"}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [b["file"] for b in manifest["batches"]] == files
    assert manifest["records"] == 12
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def test_penalty_carries_its_influence_period(tmp_path: Path) -> None:
    lake = make_lake(
        tmp_path, n_penalties=3
    )  # P000 minor 2024-01-10, P001 moderate 02-10, P002 serious 03-10
    push(settings(tmp_path), lake, str(tmp_path / "out"), load_policy())
    by_id = {r["record_id"]: r["fields"] for r in lines_of(tmp_path / "out")}
    assert by_id["P000"]["influence_until"] == "2024-04-10"
    assert by_id["P001"]["influence_until"] == "2025-02-10"
    assert by_id["P002"]["influence_until"] == "2027-03-10"


def test_a_second_push_sends_nothing(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    push(settings(tmp_path), lake, str(tmp_path / "out"), load_policy())
    again = push(settings(tmp_path), lake, str(tmp_path / "out"), load_policy())
    assert (again.planned_records, again.sent_records) == (0, 0)
    assert len(list((tmp_path / "out").glob("batch-*.jsonl"))) == 3


def test_an_approved_repair_withdraws_its_penalty_and_is_sent_once(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, n_penalties=3)
    out = tmp_path / "out"
    push(settings(tmp_path), lake, str(out), load_policy())
    add_rows(
        lake,
        tmp_path,
        "later",
        credit_repairs=[{"repair_id": "R1", "case_id": "P002", "repaired_on": "2025-04-01"}],
    )
    result = push(settings(tmp_path), lake, str(out), load_policy())
    assert result.sent_records == 2
    new = (
        json.loads((out / "batch-000002.jsonl").read_text().splitlines()[0]),
        json.loads((out / "batch-000002.jsonl").read_text().splitlines()[1]),
    )
    ops = {(r["record_type"], r["record_id"]): r for r in new}
    assert ops[("penalty", "P002")]["operation"] == "withdraw"
    assert ops[("penalty", "P002")]["fields"]["influence_until"] == "2025-04-01"  # repaired after 1 year
    assert ops[("credit_repair", "R1")]["operation"] == "upsert"
    assert ops[("credit_repair", "R1")]["uscc"] == uscc(3)
    assert push(settings(tmp_path), lake, str(out), load_policy()).sent_records == 0


def test_since_counts_older_records_as_already_on_the_platform(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)  # penalties decided 2024-01-10 .. 2024-12-10
    first = push(settings(tmp_path), lake, str(tmp_path / "out"), load_policy(), since=date(2024, 10, 1))
    assert sorted(r["fields"]["decided_on"] for r in lines_of(tmp_path / "out")) == [
        "2024-10-10",
        "2024-11-10",
        "2024-12-10",
    ]
    assert first.sent_records == 3
    assert push(settings(tmp_path), lake, str(tmp_path / "out"), load_policy()).sent_records == 0


def test_grades_are_pushed_only_where_the_policy_enables_it(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, n_penalties=1)
    grades = pl.DataFrame(
        [
            {
                "enterprise_id": uscc(i),
                "as_of": date(2025, 7, 1),
                "grade": g,
                "model_grade": g,
                "score": 100 * i,
                "probability": 0.1 * i,
            }
            for i, g in enumerate("ABCD", start=1)
        ]
    )
    Store(settings(tmp_path).store_file).save_grades(
        grades.with_columns(
            [pl.lit(None).cast(t).alias(c) for c, t in GRADES_SCHEMA.items() if c not in grades.columns]
        )
    )
    push(settings(tmp_path), lake, str(tmp_path / "off"), load_policy())
    assert "grade" not in {r["record_type"] for r in lines_of(tmp_path / "off")}
    enabled = parse_policy(
        default_policy_text().replace("grades_to_platform = false", "grades_to_platform = true")
    )
    store = Store(settings(tmp_path).store_file)
    store.add_override(uscc(1), "C", "现场检查发现重大隐患", date.today() + timedelta(days=30), "信用科")
    push(settings(tmp_path), lake, str(tmp_path / "on"), enabled)
    grades = {r["uscc"]: r for r in lines_of(tmp_path / "on") if r["record_type"] == "grade"}
    assert len(grades) == 4 and set(grades[uscc(2)]["fields"]) == {"grade"}
    assert grades[uscc(1)]["fields"]["grade"] == "C"  # the served grade: the override in force


def test_status_with_the_lake_counts_changes_not_yet_planned(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, n_penalties=3)
    push(settings(tmp_path), lake, str(tmp_path / "out"), load_policy())
    add_rows(
        lake,
        tmp_path,
        "later",
        credit_repairs=[{"repair_id": "R1", "case_id": "P002", "repaired_on": "2025-04-01"}],
    )
    (row,) = share_status(settings(tmp_path), str(tmp_path / "out"), lake, load_policy())
    assert (row["sent_records"], row["pending_records"], row["unplanned_records"]) == (3, 0, 2)


def test_signature_verifies_only_the_signed_body_and_recent_time() -> None:
    header = sign(b"k", 1_700_000_000, b"body")
    assert verify(b"k", header, b"body", now=1_700_000_010)
    assert not verify(b"k", header, b"body!", now=1_700_000_010)
    assert not verify(b"other", header, b"body", now=1_700_000_010)
    assert not verify(b"k", header, b"body", now=1_700_009_999)


def test_http_push_retries_a_failing_receiver_and_delivers_each_record_once(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    with receiver() as platform:
        platform.fail_next = 2
        result = push(settings(tmp_path), lake, platform.url, load_policy())
        assert result.ok and result.sent_records == 12
        assert len(platform.requests) == 3 + 2
        assert sorted(platform.record_keys()) == sorted(set(platform.record_keys()))
        assert len(platform.applied) == 12
        assert push(settings(tmp_path), lake, platform.url, load_policy()).sent_records == 0
        assert len(platform.requests) == 5


def test_a_batch_that_fails_every_try_waits_and_goes_first_next_time(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    with receiver() as platform:
        result = push(settings(tmp_path, max_attempts=2), lake, platform.url, load_policy(), batch_size=5)
        platform.fail_next = 2  # the next batch fails both its tries
        add_rows(
            lake,
            tmp_path,
            "later",
            credit_repairs=[{"repair_id": "R9", "case_id": "P002", "repaired_on": "2025-04-01"}],
        )
        failed = push(settings(tmp_path, max_attempts=2), lake, platform.url, load_policy())
        assert not failed.ok and failed.sent_batches == 0 and failed.failed[0]["seq"] == 4
        status = share_status(settings(tmp_path), platform.url)[0]
        assert status["pending_batches"] == 1 and status["failed_batches"] == 1
        recovered = push(settings(tmp_path, max_attempts=2), lake, platform.url, load_policy())
        assert recovered.ok and recovered.sent_records == 2
        assert result.sent_records + recovered.sent_records == len(platform.applied) == 14
        keys = platform.record_keys()
        assert keys.count(("penalty", "P002")) == 2  # upsert, then the withdrawal after its repair
        assert len(set(keys)) == 13


def test_a_rejected_batch_is_a_dead_letter_until_requeued(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    lake = make_lake(tmp_path)
    with receiver() as platform:
        platform.status_for_all = 400
        result = push(settings(tmp_path), lake, platform.url, load_policy())
        assert len(result.dead) == 3 and len(platform.requests) == 3  # rejected outright: no retry
        status = share_status(settings(tmp_path), platform.url)[0]
        assert [d["seq"] for d in status["dead_letters"]] == [1, 2, 3]
        platform.status_for_all = None
        assert push(settings(tmp_path), lake, platform.url, load_policy()).sent_records == 0  # not resent
        from riskengine.workflows.share import requeue_dead

        assert requeue_dead(settings(tmp_path), platform.url) == 3
        again = push(settings(tmp_path), lake, platform.url, load_policy())
        assert again.ok and again.sent_records == 12 and len(platform.applied) == 12


def test_kill_9_mid_push_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RISKENGINE_HOME": str(tmp_path),
        "RISKENGINE_SHARE__SECRET": SECRET,
        "RISKENGINE_SHARE__BATCH_SIZE": "5",
    }
    cmd = [sys.executable, "-m", "riskengine", "share", "--lake", str(lake)]
    with receiver() as platform:
        platform.hang_on_seq = 2  # applied by the platform, answer never reaches the pusher
        proc = subprocess.Popen([*cmd, "--to", platform.url], env=env, stderr=subprocess.PIPE)
        try:
            assert platform.applied_hang.wait(60), "the push never reached batch 2"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        assert len(platform.applied) == 10  # batches 1 and 2 applied; 2 never acknowledged
        platform.release.set()
        platform.hang_on_seq = None
        rerun = subprocess.run(
            [*cmd, "--to", platform.url], env=env, capture_output=True, text=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stderr
        assert [r["seq"] for r in platform.requests] == [1, 2, 2, 3]  # batch 2 again, same key
        assert platform.requests[1]["key"] == platform.requests[2]["key"]
        assert len(platform.applied) == 12 and len(set(platform.record_keys())) == 12
        third = subprocess.run(
            [*cmd, "--to", platform.url], env=env, capture_output=True, text=True, timeout=120
        )
        assert third.returncode == 0 and len(platform.requests) == 4


def test_share_cli_usage_and_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from riskengine.core.config import get_settings

    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    monkeypatch.delenv("RISKENGINE_SHARE__SECRET", raising=False)
    get_settings.cache_clear()
    try:
        lake = make_lake(tmp_path)
        with pytest.raises(SystemExit) as exit_:
            main(["share", "--lake", str(lake)])
        assert exit_.value.code == 2
        assert "--to" in capsys.readouterr().err
        with pytest.raises(SystemExit) as exit_:
            main(["share", "--lake", str(lake), "--to", "http://127.0.0.1:9/x"])
        assert exit_.value.code == 2 and "RISKENGINE_SHARE__SECRET" in capsys.readouterr().err
        for args in (["share", "--lake", str(lake), "--to", str(tmp_path / "out")], ["share", "--status"]):
            capsys.readouterr()
            with pytest.raises(SystemExit) as exit_:
                main(args)
            assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert f"file:{(tmp_path / 'out').resolve()}" in text and "sent         1 batches, 12 records" in text
        audit = Store(tmp_path / "riskengine.duckdb").audit().filter(action="share_push")
        assert audit.height == 1 and "sent_records=12" in audit["detail"][0] and audit["role"][0] == "cli"
    finally:
        get_settings.cache_clear()


def test_lists_and_commitments_are_shared_a_removed_listing_as_withdraw(tmp_path: Path) -> None:
    lake = make_lake(
        tmp_path,
        n_penalties=0,
        list_entries=[
            {
                "entry_id": "L1",
                "enterprise_id": uscc(1),
                "list": "abnormal_operation",
                "reason": "unreachable_address",
                "listed_on": "2024-03-01",
                "removed_on": None,
                "removal_reason": None,
            },
            {
                "entry_id": "L2",
                "enterprise_id": uscc(2),
                "list": "abnormal_operation",
                "reason": "annual_report_missing",
                "listed_on": "2024-03-01",
                "removed_on": "2024-09-01",
                "removal_reason": "rectified",
            },
        ],
        commitments=[
            {
                "commitment_id": "C1",
                "enterprise_id": uscc(3),
                "made_on": "2024-01-01",
                "kind": "notification",
                "due_on": "2024-06-30",
                "status": "breached",
                "status_changed_on": "2024-07-01",
            },
        ],
    )
    push(settings(tmp_path), lake, str(tmp_path / "out"), load_policy())
    got = {(r["record_type"], r["record_id"]): r for r in lines_of(tmp_path / "out")}
    assert got[("list_entry", "L1")]["operation"] == "upsert"
    assert got[("list_entry", "L2")]["operation"] == "withdraw"
    assert got[("list_entry", "L2")]["fields"]["removal_reason"] == "rectified"
    assert got[("commitment", "C1")]["fields"]["status"] == "breached"


def test_a_voided_penalty_is_withdrawn(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, n_penalties=2)
    out = tmp_path / "out"
    push(settings(tmp_path), lake, str(out), load_policy())
    add_rows(
        lake,
        tmp_path,
        "void",
        record_voids=[
            {
                "void_id": "V1",
                "enterprise_id": uscc(1),
                "record_table": "penalties",
                "record_id": "P000",
                "voided_on": "2025-01-10",
            }
        ],
    )
    assert push(settings(tmp_path), lake, str(out), load_policy()).sent_records == 1
    (line,) = [json.loads(x) for x in (out / "batch-000002.jsonl").read_text().splitlines()]
    assert (line["record_id"], line["operation"], line["fields"]["voided_on"]) == (
        "P000",
        "withdraw",
        "2025-01-10",
    )


def test_a_later_removal_record_withdraws_the_list_entry(tmp_path: Path) -> None:
    entry = {
        "entry_id": "L1",
        "enterprise_id": uscc(1),
        "list": "serious_dishonest",
        "reason": "serious_violation",
        "listed_on": "2024-03-01",
        "removed_on": None,
        "removal_reason": None,
    }
    lake = make_lake(tmp_path, n_penalties=0, list_entries=[entry])
    out = tmp_path / "out"
    push(settings(tmp_path), lake, str(out), load_policy())
    add_rows(
        lake,
        tmp_path,
        "removal",
        list_entries=[entry],
        list_removals=[
            {
                "removal_id": "RM1",
                "entry_id": "L1",
                "removed_on": "2025-04-01",
                "removal_reason": "credit_repair",
            }
        ],
    )
    assert push(settings(tmp_path), lake, str(out), load_policy()).sent_records == 1
    (line,) = [json.loads(x) for x in (out / "batch-000002.jsonl").read_text().splitlines()]
    assert line["operation"] == "withdraw"
    assert (line["fields"]["removed_on"], line["fields"]["removal_id"]) == ("2025-04-01", "RM1")
