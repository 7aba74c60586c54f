"""The repair eligibility record (CONTRACT section 5), checked whole: every check's key and value an
officer reads, each period on both sides of its boundary, and which penalties count as a repeat."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from riskengine.lake.ingest import ingest
from riskengine.supervision.policy import load_policy
from riskengine.workflows.cases import eligibility
from tests.case_helpers import firm
from tests.ingest_helpers import uscc, write_csv

E1, E2 = uscc(21), uscc(22)
RULES = load_policy().cases
RECEIPT = [{"code": "fine_receipt", "state": "received"}]


def _penalty(case_id: str, eid: str, day: str, severity: str = "moderate", fine: str = "") -> dict:
    return {"case_id": case_id, "enterprise_id": eid, "decided_on": day, "severity": severity,
            "fine_cny": fine, "dishonest_list": "false"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eligibility")
    src = root / "src"
    write_csv(src, "enterprises", [firm(E1), firm(E2)])
    write_csv(src, "penalties", [
        _penalty("PEN-1", E1, "2025-01-10", fine="5000"),
        _penalty("PEN-0", E1, "2025-01-10"),                      # no fine; the same day as PEN-1
        _penalty("PEN-B", E1, "2024-12-01"),                      # before: never a repeat
        _penalty("PEN-M", E1, "2025-04-01", severity="minor"),    # minor: never a repeat
        _penalty("PEN-R", E1, "2025-05-02"),                      # moderate, after: a repeat
        _penalty("PEN-X", E2, "2025-05-03"),                      # another enterprise's
        _penalty("PEN-S", E2, "2025-05-04", severity="serious"),  # serious: a repeat of E2's entries
    ])
    write_csv(src, "credit_repairs", [{"repair_id": "CR-1", "case_id": "PEN-B", "repaired_on": "2025-02-01"}])
    write_csv(src, "list_entries", [
        {"entry_id": "LST-A", "enterprise_id": E2, "list": "serious_dishonest", "reason": "serious_violation",
         "listed_on": "2024-06-01", "removed_on": "", "removal_reason": ""},
        {"entry_id": "LST-B", "enterprise_id": E2, "list": "abnormal_operation",
         "reason": "unreachable_address", "listed_on": "2025-03-01", "removed_on": "", "removal_reason": ""},
    ])
    write_csv(src, "list_removals", [{"removal_id": "RM-1", "entry_id": "LST-B", "removed_on": "2025-04-01",
                                      "removal_reason": "rectified"}])
    out = root / "lake"
    ingest(src, out, ingest_day=date(2025, 12, 31))
    return out


def test_a_penalty_repair_on_the_first_day_the_minimum_period_allows(lake: Path) -> None:
    got = eligibility(lake, ("penalties", "PEN-1"), E1, date(2025, 4, 10), RULES, RECEIPT)
    assert got == {"as_of": "2025-04-10", "eligible": True, "checks": {
        "minimum_period": {"ok": True, "earliest": "2025-04-10", "rule": "moderate: 3mo after 2025-01-10"},
        "still_in_effect": {"ok": True, "ends": "2026-01-10"},
        "fine_paid": {"ok": True, "fine_cny": 5000.0},
        "not_repaired_yet": {"ok": True},
        "no_repeat": {"ok": True, "since": "2025-01-10", "repeats": []},
    }}


def test_a_day_early_and_on_the_day_the_influence_ends_are_refused(lake: Path) -> None:
    early = eligibility(lake, ("penalties", "PEN-1"), E1, date(2025, 4, 9), RULES, RECEIPT)
    assert (early["eligible"], early["checks"]["minimum_period"]["ok"]) == (False, False)
    last = eligibility(lake, ("penalties", "PEN-1"), E1, date(2026, 1, 9), RULES, RECEIPT)
    assert last["checks"]["still_in_effect"]["ok"] is True
    ended = eligibility(lake, ("penalties", "PEN-1"), E1, date(2026, 1, 10), RULES, RECEIPT)
    assert (ended["eligible"], ended["checks"]["still_in_effect"]["ok"]) == (False, False)


def test_a_fine_needs_its_receipt_and_no_fine_needs_none(lake: Path) -> None:
    unpaid = eligibility(lake, ("penalties", "PEN-1"), E1, date(2025, 4, 10), RULES, [])
    assert unpaid["checks"]["fine_paid"] == {"ok": False, "fine_cny": 5000.0}
    free = eligibility(lake, ("penalties", "PEN-0"), E1, date(2025, 4, 10), RULES, [])
    assert free["checks"]["fine_paid"] == {"ok": True, "fine_cny": 0.0}


def test_only_a_later_moderate_or_serious_penalty_of_the_same_enterprise_is_a_repeat(lake: Path) -> None:
    got = eligibility(lake, ("penalties", "PEN-1"), E1, date(2025, 6, 1), RULES, RECEIPT)
    assert got["checks"]["no_repeat"] == {"ok": False, "since": "2025-01-10", "repeats": ["PEN-R"]}
    assert got["eligible"] is False


def test_a_repaired_penalty_is_not_repaired_twice(lake: Path) -> None:
    got = eligibility(lake, ("penalties", "PEN-B"), E1, date(2025, 3, 1), RULES, RECEIPT)
    assert got["checks"]["not_repaired_yet"] == {"ok": False}


def test_list_entries_by_their_list_and_removal(lake: Path) -> None:
    months = RULES.list_min_months["serious_dishonest"]
    assert months > 0
    got = eligibility(lake, ("list_entries", "LST-A"), E2, date(2025, 6, 1), RULES, [])
    assert got == {"as_of": "2025-06-01", "eligible": False, "checks": {
        "minimum_period": {"ok": True, "earliest": "2025-06-01",
                           "rule": f"serious_dishonest: {months} months after 2024-06-01"},
        "still_listed": {"ok": True},
        "fine_paid": {"ok": True, "fine_cny": None},
        "no_repeat": {"ok": False, "since": "2024-06-01", "repeats": ["PEN-X", "PEN-S"]},
    }}
    assert eligibility(lake, ("list_entries", "LST-A"), E2, date(2025, 5, 31), RULES, [])[
        "checks"]["minimum_period"]["ok"] is False
    removed = eligibility(lake, ("list_entries", "LST-B"), E2, date(2025, 6, 1), RULES, [])
    assert removed["checks"]["still_listed"] == {"ok": False}
