"""Cases (CONTRACT section 5): objections and credit repairs, their clocks, order, effects and crashes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from riskengine.core.errors import CaseStateError, ConflictError, NotFoundError, UsageError
from riskengine.core.store import Store
from riskengine.lake.layout import scan_table
from riskengine.workflows import cases
from tests.case_helpers import E1, E2, E3, build_lake, rules_regrader, settings_for

TODAY = date(2025, 12, 31)


@pytest.fixture
def office(tmp_path: Path):
    """(settings, lake) with grades of all three enterprises as of 2025-09-01 in the store."""
    lake = build_lake(tmp_path)
    settings = settings_for(tmp_path)
    graded = pl.concat([rules_regrader(lake, e, date(2025, 9, 1)) for e in (E1, E2, E3)])
    Store(settings.store_file).save_grades(graded)
    return settings, lake


def served(settings, eid: str) -> str:
    grades = Store(settings.store_file).latest_grades()
    return grades.filter(pl.col("enterprise_id") == eid)["grade"].item()


def step(settings, lake, case_id: str, name: str, on: date, reason: str = "checked the file"):
    return cases.take_step(settings, lake, case_id, name, reason=reason, officer="王科长", on=on, today=TODAY,
                           regrader=rules_regrader)


def test_an_upheld_objection_voids_the_record_and_regrades_at_once(office) -> None:
    settings, lake = office
    assert served(settings, E3) == "D"
    case = cases.open_objection(settings, lake, E3, received_on=date(2025, 9, 29),
                                record=("list_entries", "LST-3"), statement="列入依据有误", officer="王科长",
                                today=TODAY)
    # CONTRACT §5: received Monday 2025-09-29, 2 working days → due 2025-10-09 (National Day week).
    assert (case.status, case.due_on) == ("received", date(2025, 10, 9))
    assert cases.disputed(settings) == {E3}
    case = step(settings, lake, case.case_id, "accept", date(2025, 10, 9))
    # 10 working days from Thursday 10-09: Friday 10-10, Saturday 10-11 (worked, 调休), ... 10-22.
    assert (case.status, case.due_on) == ("accepted", date(2025, 10, 22))
    case = step(settings, lake, case.case_id, "uphold", date(2025, 10, 20))
    assert (case.status, case.decided_on, case.effect_state) == ("upheld", date(2025, 10, 20), "done")
    voids = scan_table(lake, "record_voids").collect()
    assert voids.select("record_table", "record_id", "voided_on").row(0) == (
        "list_entries", "LST-3", date(2025, 10, 20))
    assert scan_table(lake, "list_entries").collect().height == 2  # the voided record stays in the lake
    assert served(settings, E3) == "A"
    history = Store(settings.store_file).grade_history(E3)
    assert history["grade"].to_list() == ["D", "A"]  # the old grade kept in history
    assert cases.disputed(settings) == set()


def test_a_step_out_of_order_or_twice_names_the_status_and_changes_nothing(office) -> None:
    settings, lake = office
    case = cases.open_objection(settings, lake, E1, received_on=date(2025, 9, 1), record=None,
                                statement="等级过高", officer="王科长", today=TODAY)
    with pytest.raises(CaseStateError, match="is received: the next step is accept or refuse") as err:
        step(settings, lake, case.case_id, "uphold", date(2025, 9, 2))
    assert err.value.current_status == "received"
    assert cases.case_store(settings).get(case.case_id) == case
    step(settings, lake, case.case_id, "accept", date(2025, 9, 2))
    step(settings, lake, case.case_id, "reject", date(2025, 9, 5))
    with pytest.raises(CaseStateError, match="already rejected"):
        step(settings, lake, case.case_id, "uphold", date(2025, 9, 6))
    with pytest.raises(CaseStateError, match="is received"):  # a repair step on an objection
        step(settings, lake, cases.open_objection(
            settings, lake, E1, received_on=date(2025, 9, 8), record=None, statement="x", officer="a",
            today=TODAY).case_id, "approve", date(2025, 9, 9))


def test_every_step_needs_a_reason_and_a_day_not_before_the_last(office) -> None:
    settings, lake = office
    case = cases.open_objection(settings, lake, E1, received_on=date(2025, 9, 1),
                                record=("penalties", "PEN-1"), statement="处罚已撤销", officer="王科长",
                                today=TODAY)
    with pytest.raises(UsageError, match="reason"):
        step(settings, lake, case.case_id, "accept", date(2025, 9, 2), reason="  ")
    with pytest.raises(UsageError, match="before the case's last step"):
        step(settings, lake, case.case_id, "accept", date(2025, 8, 31))
    assert cases.case_store(settings).get(case.case_id).status == "received"


def test_an_objection_names_an_existing_record_of_the_enterprise(office) -> None:
    settings, lake = office
    with pytest.raises(NotFoundError, match="no penalties record PEN-1 of enterprise"):
        cases.open_objection(settings, lake, E2, received_on=date(2025, 9, 1),
                             record=("penalties", "PEN-1"), statement="x", officer="a", today=TODAY)


def test_a_repair_is_accepted_when_complete_and_approved_when_eligible(office) -> None:
    settings, lake = office
    case = cases.open_repair(settings, lake, E1, received_on=date(2025, 3, 3), penalty="PEN-1",
                             list_entry=None, documents=["rectification_proof"], officer="李", today=TODAY)
    states = {d["code"]: d["state"] for d in case.documents}
    assert states == {"rectification_proof": "received", "credit_pledge": "missing",
                      "fine_receipt": "missing"}
    assert case.eligibility["checks"]["minimum_period"] == {
        "ok": False, "earliest": "2025-04-10", "rule": "moderate: 3mo after 2025-01-10"}
    with pytest.raises(ConflictError, match="incomplete"):
        step(settings, lake, case.case_id, "accept", date(2025, 3, 4))
    cases.receive_documents(settings, lake, case.case_id, ["credit_pledge", "fine_receipt"], "李")
    case = step(settings, lake, case.case_id, "accept", date(2025, 3, 4))
    assert case.due_on == date(2025, 3, 11)  # 5 working days
    with pytest.raises(ConflictError, match="not eligible on 2025-03-10 \\(minimum_period\\)"):
        step(settings, lake, case.case_id, "approve", date(2025, 3, 10))
    # Once approved (late, after the minimum period), the repair and the pledge enter the lake.
    case = step(settings, lake, case.case_id, "approve", date(2025, 4, 11))
    assert case.status == "approved" and case.eligibility is not None
    repairs = scan_table(lake, "credit_repairs").collect()
    assert repairs.select("repair_id", "case_id", "repaired_on").row(0) == (
        f"CR-{case.case_id}", "PEN-1", date(2025, 4, 11))
    pledge = scan_table(lake, "commitments").collect().row(0, named=True)
    assert (pledge["kind"], pledge["status"], pledge["due_on"]) == ("repair", "open", date(2026, 4, 11))


def test_an_approved_list_repair_takes_the_entry_off_and_lifts_the_rule(office) -> None:
    settings, lake = office
    assert served(settings, E2) == "C"
    case = cases.open_repair(settings, lake, E2, received_on=date(2025, 9, 2), penalty=None,
                             list_entry="LST-2", documents=["rectification_proof", "credit_pledge"],
                             officer="李", today=TODAY)
    assert case.eligibility["eligible"]
    step(settings, lake, case.case_id, "accept", date(2025, 9, 2))
    step(settings, lake, case.case_id, "approve", date(2025, 9, 3))
    removal = scan_table(lake, "list_removals").collect()
    assert removal.select("entry_id", "removed_on", "removal_reason").row(0) == (
        "LST-2", date(2025, 9, 3), "credit_repair")
    assert served(settings, E2) == "A"


def test_a_crash_after_the_decision_is_completed_by_the_next_command(office, monkeypatch) -> None:
    settings, lake = office
    case = cases.open_repair(settings, lake, E2, received_on=date(2025, 9, 2), penalty=None,
                             list_entry="LST-2", documents=["rectification_proof", "credit_pledge"],
                             officer="李", today=TODAY)
    step(settings, lake, case.case_id, "accept", date(2025, 9, 2))
    real = cases._write_records

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies between "decided" and "record written"

    monkeypatch.setattr(cases, "_write_records", crash)
    with pytest.raises(KeyboardInterrupt):
        step(settings, lake, case.case_id, "approve", date(2025, 9, 3))
    stored = cases.case_store(settings).get(case.case_id)
    assert (stored.status, stored.effect_state) == ("approved", "pending")
    assert scan_table(lake, "list_removals").collect().height == 0
    assert served(settings, E2) == "C"
    monkeypatch.setattr(cases, "_write_records", real)
    # Any later case command finishes it first; a second replay adds nothing.
    cases.list_cases(settings, cases.CaseFilter(), TODAY)
    assert cases.complete_pending(settings, lake, rules_regrader) == [case.case_id]
    assert cases.complete_pending(settings, lake, rules_regrader) == []
    cases.apply_effect(settings, lake, stored, rules_regrader)  # a replay of the same records
    assert scan_table(lake, "list_removals").collect().height == 1
    assert scan_table(lake, "commitments").collect().height == 1
    assert cases.case_store(settings).get(case.case_id).effect_state == "done"
    assert served(settings, E2) == "A"


def test_every_step_is_audited_with_the_officer(office) -> None:
    settings, lake = office
    case = cases.open_objection(settings, lake, E1, received_on=date(2025, 9, 1), record=None,
                                statement="等级过高", officer="王科长", today=TODAY)
    step(settings, lake, case.case_id, "accept", date(2025, 9, 2))
    step(settings, lake, case.case_id, "reject", date(2025, 9, 3), reason="依据充分")
    log = Store(settings.store_file).audit().filter(pl.col("resource") == f"case:{case.case_id}")
    assert log["action"].to_list() == ["cases.open", "cases.accept", "cases.reject"]
    assert set(log["key_name"]) == {"王科长"}


def test_overview_counts_open_cases_overdue_and_days_to_decision(office) -> None:
    settings, lake = office
    a = cases.open_objection(settings, lake, E1, received_on=date(2025, 9, 1), record=None, statement="x",
                             officer="a", today=TODAY)
    cases.open_objection(settings, lake, E2, received_on=date(2025, 12, 29), record=None, statement="y",
                         officer="a", today=TODAY)
    step(settings, lake, a.case_id, "accept", date(2025, 9, 2))
    step(settings, lake, a.case_id, "reject", date(2025, 9, 11))
    c = cases.open_repair(settings, lake, E2, received_on=date(2025, 9, 1), penalty=None, list_entry="LST-2",
                          documents=[], officer="a", today=TODAY)
    everything = cases.list_cases(settings, cases.CaseFilter(), TODAY)
    view = cases.overview(everything, TODAY)
    assert view["open"] == {"objection": {"received": 1, "accepted": 0},
                            "repair": {"received": 1, "accepted": 0}}
    assert (view["overdue"], view["decided"], view["median_days_to_decision"]) == (1, 1, 10)
    overdue = cases.list_cases(settings, cases.CaseFilter(overdue=True), TODAY)
    assert [x.case_id for x in overdue] == [c.case_id]
    assert cases.case_view(overdue[0], TODAY)["overdue"] is True
