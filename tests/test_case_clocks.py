"""Case clocks without a lake (riskengine/workflows/cases.py): a case's due day, overdue flag and working
days left on the days around its deadline, the office overview's counts and medians, the list filter,
and the documents a repair needs — worked out by hand on the 2025 mainland calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from riskengine.core.errors import UsageError
from riskengine.core.store.cases import Case, CaseStep
from riskengine.workflows.cases import CaseFilter, _check_day, _documents, _offset, case_view, overview

RECEIVED = date(2025, 9, 29)  # Monday; 10-01..10-08 are National Day holidays
DUE = date(2025, 10, 9)  # two working days on: 09-30 and 10-09


def case(kind: str = "objection", status: str = "received", due_on: date | None = DUE,
         decided_on: date | None = None, received_on: date = RECEIVED, **kw: object) -> Case:
    step = CaseStep("open", None, "received", received_on, "王科长", "收到异议申请",
                    datetime(2025, 9, 29, 9, 30, 15))
    return Case(case_id="OBJ-1", kind=kind, enterprise_id="91420106MA4K0000X9", district="420106",
                sector="retail", received_on=received_on, status=status, due_on=due_on, subject_table=None,
                subject_id=None, statement="罚款已缴", eligibility=None, documents=[], decided_on=decided_on,
                effect_state=None, effect=None, opened_by="王科长", opened_at=datetime(2025, 9, 29, 9, 30),
                steps=(step,), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("today", "overdue", "left"), [
    (RECEIVED, False, 2),
    (date(2025, 9, 30), False, 1),
    (date(2025, 10, 3), False, 1),  # a holiday: the clock stands
    (DUE, False, 0),  # due today: not yet overdue
    (date(2025, 10, 10), True, None),
])
def test_the_clock_of_an_open_case_around_its_due_day(today: date, overdue: bool, left: int | None) -> None:
    view = case_view(case(), today)
    assert (view["due_on"], view["overdue"], view["working_days_left"]) == ("2025-10-09", overdue, left)


def test_a_decided_case_or_one_without_a_due_day_has_no_clock() -> None:
    decided = case(status="upheld", decided_on=date(2025, 10, 20))
    view = case_view(decided, date(2025, 11, 1))
    assert (view["overdue"], view["working_days_left"], view["decided_on"]) == (False, None, "2025-10-20")
    assert view["next_steps"] == []
    undated = case_view(case(due_on=None), date(2025, 11, 1))
    assert (undated["due_on"], undated["overdue"], undated["working_days_left"]) == (None, False, None)


def test_the_view_names_the_next_steps_and_the_papers_only_when_asked() -> None:
    full = case_view(case(), RECEIVED)
    assert full["next_steps"] == ["accept", "refuse"] and full["received_on"] == "2025-09-29"
    assert full["statement"] == "罚款已缴" and full["subject"] == {"grade": True}
    assert full["steps"] == [{"step": "open", "name_zh": "收件", "status_before": None,
                              "status_after": "received", "on": "2025-09-29", "officer": "王科长",
                              "reason": "收到异议申请", "recorded_at": "2025-09-29T09:30:15"}]
    bare = case_view(case(), RECEIVED, documents=False)
    assert "statement" not in bare and "documents" not in bare and "eligibility" not in bare
    assert bare["steps"] == [{"step": "open", "status_after": "received", "on": "2025-09-29"}]
    subject = case_view(replace(case(), subject_table="penalties", subject_id="P-1"), RECEIVED)["subject"]
    assert subject == {"table": "penalties", "record_id": "P-1"}


def test_the_overview_counts_open_and_overdue_cases_and_the_median_days_to_decision() -> None:
    today = date(2025, 10, 10)
    cases = [
        case(),  # open, overdue on 10-10
        case(status="accepted", due_on=date(2025, 10, 20)),  # open, in time
        case(kind="repair", status="received", due_on=date(2025, 10, 9)),  # open, overdue
        case(status="upheld", due_on=None, decided_on=date(2025, 10, 9)),  # 10 days, 2 working days
        # 14 days; 5 working: 09-30, 10-09, 10-10, Saturday 10-11 (调休, worked) and 10-13
        case(kind="repair", status="denied", due_on=None, decided_on=date(2025, 10, 13)),
        case(kind="repair", status="refused", due_on=date(2025, 10, 1)),  # closed: never overdue
    ]
    got = overview(cases, today)
    assert got["as_of"] == "2025-10-10"
    assert got["open"] == {"objection": {"received": 1, "accepted": 1},
                           "repair": {"received": 1, "accepted": 0}}
    assert got["open_total"] == 3
    assert (got["overdue"], got["overdue_by_kind"]) == (2, {"objection": 1, "repair": 1})
    assert got["decided"] == 2
    assert got["median_days_to_decision"] == 12  # (10 + 14) / 2
    assert got["median_working_days_to_decision"] == 3.5  # (2 + 5) / 2


def test_an_overview_without_decisions_has_no_medians() -> None:
    got = overview([case()], RECEIVED)
    assert (got["decided"], got["median_days_to_decision"], got["median_working_days_to_decision"]) == (
        0, None, None)
    assert got["overdue"] == 0 and got["open_total"] == 1


@pytest.mark.parametrize(("where", "message"), [
    (CaseFilter(kind="appeal"), "--kind must be one of objection, repair; got 'appeal'"),
    (CaseFilter(status="closed"), "--status must be one of received, accepted, refused, upheld, rejected, "
                                  "approved, denied; got 'closed'"),
])
def test_a_list_filter_with_an_unknown_kind_or_status_is_refused(where: CaseFilter, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        where.check()
    assert str(refused.value) == message


def test_every_known_kind_and_status_is_a_valid_filter() -> None:
    for kind in ("objection", "repair"):
        CaseFilter(kind=kind).check()
    for status in ("received", "accepted", "refused", "upheld", "rejected", "approved", "denied"):
        CaseFilter(status=status).check()


def test_a_day_after_today_is_refused_and_today_is_fine() -> None:
    _check_day(RECEIVED, RECEIVED, "--received-on")
    with pytest.raises(UsageError, match=r"^--received-on 2025-09-30 is after today \(2025-09-29\)$"):
        _check_day(date(2025, 9, 30), RECEIVED, "--received-on")


@pytest.mark.parametrize(("day", "period", "expected"), [
    (date(2025, 1, 31), "3mo", date(2025, 4, 30)),
    (date(2024, 2, 29), "1y", date(2025, 2, 28)),
    (date(2025, 6, 15), "12mo", date(2026, 6, 15)),
    (date(2025, 6, 15), "0mo", date(2025, 6, 15)),
])
def test_calendar_periods_are_added_as_the_penalty_features_count_them(day: date, period: str,
                                                                         expected: date) -> None:
    assert _offset(day, period) == expected


def test_a_repair_asks_for_the_fine_receipt_only_where_there_was_a_fine() -> None:
    with_fine = _documents(["fine_receipt"], fine=True)
    codes = [d["code"] for d in with_fine]
    assert "fine_receipt" in codes
    assert {d["code"]: d["state"] for d in with_fine}["fine_receipt"] == "received"
    assert all(d["state"] == "missing" for d in with_fine if d["code"] != "fine_receipt")
    assert all(d["name_zh"] and d["name_en"] for d in with_fine)
    assert [d["code"] for d in _documents([], fine=False)] == [c for c in codes if c != "fine_receipt"]
    with pytest.raises(UsageError, match="unknown document"):
        _documents(["selfie"], fine=False)


def test_the_view_names_every_field_of_the_case() -> None:
    accepted = CaseStep("accept", "received", "accepted", date(2025, 9, 30), "李四", "材料齐全",
                        datetime(2025, 9, 30, 10, 0))
    shown = replace(case(status="accepted"), steps=(case().steps[0], accepted),
                    eligibility={"eligible": True}, documents=[{"code": "credit_pledge"}],
                    effect_state="pending")
    view = case_view(shown, RECEIVED)
    assert {k: view[k] for k in ("case_id", "enterprise_id", "kind", "status", "district", "sector",
                                 "documents", "eligibility", "effect")} == {
        "case_id": "OBJ-1", "enterprise_id": "91420106MA4K0000X9", "kind": "objection", "status": "accepted",
        "district": "420106", "sector": "retail", "documents": [{"code": "credit_pledge"}],
        "eligibility": {"eligible": True}, "effect": "pending"}
    assert [s["name_zh"] for s in view["steps"]] == ["收件", "受理"]
    bare = case_view(shown, RECEIVED, documents=False)
    assert (bare["case_id"], bare["kind"], bare["district"], bare["sector"]) == (
        "OBJ-1", "objection", "420106", "retail")


def test_the_overview_counts_each_open_case_and_overdue_ones_by_their_own_kind() -> None:
    today = date(2025, 10, 10)
    cases = [case(), case(), case(kind="repair", status="accepted", due_on=date(2025, 10, 20))]
    got = overview(cases, today)
    assert got["open"]["objection"]["received"] == 2
    assert got["overdue_by_kind"] == {"objection": 2, "repair": 0}


def test_unknown_documents_are_all_named_beside_the_known_ones_and_names_are_chinese_then_english() -> None:
    with pytest.raises(UsageError) as refused:
        _documents(["selfie", "photo"], fine=True)
    assert str(refused.value) == ("unknown document(s) photo, selfie; known: rectification_proof, "
                                  "credit_pledge, fine_receipt")
    receipt = next(d for d in _documents([], fine=True) if d["code"] == "fine_receipt")
    assert (receipt["name_zh"], receipt["name_en"]) == ("罚款缴纳凭证", "receipt of the fine paid")
