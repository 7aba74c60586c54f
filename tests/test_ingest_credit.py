"""Ingest of the credit-record tables (list_entries, commitments, record_voids): their quarantine rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from riskengine.lake.layout import scan_table
from tests.ingest_helpers import E1, E2, quarantined, run, source, uscc


def entry(eid: str = "L1", ent: str = E1, **overrides: Any) -> dict[str, Any]:
    row = {"entry_id": eid, "enterprise_id": ent, "list": "abnormal_operation",
           "reason": "annual_report_missing", "listed_on": "2023-07-15", "removed_on": "",
           "removal_reason": ""}
    return {**row, **overrides}


def commitment(cid: str = "C1", ent: str = E1, **overrides: Any) -> dict[str, Any]:
    row = {"commitment_id": cid, "enterprise_id": ent, "made_on": "2024-01-10", "kind": "notification",
           "due_on": "2024-06-10", "status": "open", "status_changed_on": ""}
    return {**row, **overrides}


def rules(lake: Path, table: str) -> set[tuple[int, str, str]]:
    return {(e["row_number"], e["column"], e["rule"]) for e in quarantined(lake) if e["table"] == table}


def test_good_list_entries_and_commitments_are_accepted_with_types(tmp_path: Path) -> None:
    repaired = entry("L2", E2, list="serious_dishonest", removed_on="2024-01-02",
                     removal_reason="credit_repair")
    src = source(tmp_path, list_entries=[entry(), repaired],
                 commitments=[commitment(), commitment("C2", due_on="2030-01-01")])
    report = run(src, tmp_path / "lake")
    assert report.tables["list_entries"] == {"read": 2, "accepted": 2, "quarantined": 0, "duplicates": 0}
    assert report.tables["commitments"]["accepted"] == 2  # a due day may lie ahead
    lists = scan_table(tmp_path / "lake", "list_entries").collect()
    assert lists.schema["removed_on"] == pl.Date
    assert lists.filter(pl.col("entry_id") == "L1")["removed_on"].item() is None


@pytest.mark.parametrize(("row", "column", "rule"), [
    (entry(removed_on="2023-07-01", removal_reason="rectified"), "removed_on", "date_order"),
    (entry(ent=uscc(99)), "enterprise_id", "unknown_reference"),
    (entry(list="黑名单"), "list", "bad_enum"),
    (entry(removal_reason="rectified"), "removal_reason", "inconsistent"),
    (entry(list="serious_dishonest", removed_on="2024-01-01", removal_reason="moved_to_serious"),
     "removal_reason", "inconsistent"),
    (entry(removal_reason="forgiven", removed_on="2024-01-01"), "removal_reason", "bad_enum"),
    (entry(listed_on=""), "listed_on", "missing_value"),
])
def test_a_bad_list_entry_is_quarantined_by_its_rule(tmp_path: Path, row: dict[str, Any], column: str,
                                                     rule: str) -> None:
    src = source(tmp_path, list_entries=[entry("L0"), row])
    report = run(src, tmp_path / "lake")
    assert report.tables["list_entries"] == {"read": 2, "accepted": 1, "quarantined": 1, "duplicates": 0}
    assert rules(tmp_path / "lake", "list_entries") == {(2, column, rule)}


@pytest.mark.parametrize(("row", "column", "rule"), [
    (commitment(kind="promise"), "kind", "bad_enum"),
    (commitment(status="violated"), "status", "bad_enum"),
    (commitment(due_on="2023-12-01"), "due_on", "date_order"),
    (commitment(status="breached"), "status_changed_on", "missing_value"),
    (commitment(status="kept", status_changed_on="2024-01-01"), "status_changed_on", "date_order"),
    (commitment(ent=uscc(98)), "enterprise_id", "unknown_reference"),
])
def test_a_bad_commitment_is_quarantined_by_its_rule(tmp_path: Path, row: dict[str, Any], column: str,
                                                     rule: str) -> None:
    src = source(tmp_path, commitments=[commitment("C0"), row])
    run(src, tmp_path / "lake")
    assert rules(tmp_path / "lake", "commitments") == {(2, column, rule)}


def test_a_void_must_name_a_voidable_table(tmp_path: Path) -> None:
    void = {"void_id": "V1", "enterprise_id": E1, "record_table": "inspections", "record_id": "I1",
            "voided_on": "2025-01-02"}
    src = source(tmp_path, record_voids=[void, {**void, "void_id": "V2", "record_table": "enterprises"}])
    report = run(src, tmp_path / "lake")
    assert report.tables["record_voids"]["accepted"] == 1
    assert rules(tmp_path / "lake", "record_voids") == {(2, "record_table", "bad_enum")}


def test_a_generated_dirty_city_quarantines_removals_before_listing(tmp_path: Path) -> None:
    from riskengine.synth import generate_city

    summary = generate_city(tmp_path / "city", 400, seed=3, end="2025-06-01", dirty=0.02)
    run_report = run(tmp_path / "city", tmp_path / "lake")
    injected = summary["injected"]["by_table"]["list_entries"]["removed_before_listed"]
    order = [e for e in quarantined(tmp_path / "lake")
             if e["table"] == "list_entries" and e["rule"] == "date_order"]
    assert len(order) >= injected >= 1
    assert run_report.tables["list_entries"]["quarantined"] >= injected


def test_a_removal_must_name_a_known_list_entry(tmp_path: Path) -> None:
    removal = {"removal_id": "X1", "entry_id": "L1", "removed_on": "2024-03-01",
               "removal_reason": "credit_repair"}
    src = source(tmp_path, list_entries=[entry()], list_removals=[removal, {**removal, "removal_id": "X2",
                                                                          "entry_id": "L9"}])
    report = run(src, tmp_path / "lake")
    assert report.tables["list_removals"]["accepted"] == 1
    assert rules(tmp_path / "lake", "list_removals") == {(2, "entry_id", "unknown_reference")}
