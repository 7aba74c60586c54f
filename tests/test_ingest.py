"""Ingest into the validated lake: every quarantine rule, the vectorised USCC check, conservation."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine.core.ids import uscc_problem, uscc_reason, uscc_valid
from riskengine.lake.layout import scan_quarantine, scan_table
from tests.ingest_helpers import (
    E1,
    E2,
    enterprise,
    inspection,
    only_entry,
    quarantined,
    run,
    source,
    uscc,
    write_csv,
)

# --- every quarantine reason ---------------------------------------------------------------------------


def test_empty_required_value_is_quarantined_with_file_row_column(tmp_path: Path) -> None:
    src = source(tmp_path, enterprises=[enterprise(E1), enterprise(E2, status="")])
    run(src, tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "missing_value")
    assert entry["table"] == "enterprises"
    assert entry["source_file"] == str(src / "enterprises.csv")
    assert (entry["row_number"], entry["column"], entry["value"]) == (2, "status", None)
    assert entry["reason"] == "required value is empty"


def test_an_empty_district_takes_the_uscc_division_code_and_an_empty_sector_unknown(tmp_path: Path) -> None:
    # CONTRACT section 1: district and sector are optional; an export may leave them empty.
    run(source(tmp_path, enterprises=[enterprise(E1, district="", sector="", established_on="")]),
        tmp_path / "lake")
    row = scan_table(tmp_path / "lake", "enterprises").collect().row(0, named=True)
    assert (row["district"], row["sector"], row["established_on"]) == (E1[2:8], "unknown", None)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("inspected_on", "2021-13-01", "not an ISO date (YYYY-MM-DD)"),
        ("inspected_on", "04/03/2021", "not an ISO date (YYYY-MM-DD)"),
        ("findings_minor", "two", "not a whole number"),
        ("findings_minor", "1.5", "not a whole number"),
    ],
)
def test_unparseable_cell_is_quarantined_as_bad_type(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    src = source(tmp_path, inspections=[inspection("I1"), inspection("I2", **{column: value})])
    run(src, tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "bad_type")
    assert (entry["table"], entry["row_number"], entry["column"]) == ("inspections", 2, column)
    assert (entry["value"], entry["reason"]) == (value, reason)


def test_non_numeric_amount_is_quarantined_as_bad_type(tmp_path: Path) -> None:
    src = source(tmp_path, enterprises=[enterprise(E1, registered_capital="12万")])
    run(src, tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "bad_type")
    assert (entry["row_number"], entry["column"], entry["value"]) == (1, "registered_capital", "12万")
    assert entry["reason"] == "not a finite number"


def test_unknown_boolean_spelling_is_quarantined_and_chinese_yes_no_accepted(tmp_path: Path) -> None:
    penalty = {
        "case_id": "C1",
        "enterprise_id": E1,
        "decided_on": "2022-01-05",
        "severity": "minor",
        "fine_cny": "5000",
        "dishonest_list": "是",
    }
    src = source(
        tmp_path,
        penalties=[
            penalty,
            {**penalty, "case_id": "C2", "dishonest_list": "maybe"},
            {**penalty, "case_id": "C3", "dishonest_list": "否"},
        ],
    )
    run(src, tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "bad_type")
    assert (entry["row_number"], entry["column"], entry["value"]) == (2, "dishonest_list", "maybe")
    kept = scan_table(tmp_path / "lake", "penalties").sort("case_id").collect()
    assert kept["dishonest_list"].to_list() == [True, False]


def test_value_outside_the_enum_is_quarantined(tmp_path: Path) -> None:
    src = source(tmp_path, inspections=[inspection(outcome="failed")])
    run(src, tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "bad_enum")
    assert (entry["row_number"], entry["column"], entry["value"]) == (1, "outcome", "failed")
    assert entry["reason"] == "not one of: pass, conditional, fail"


def test_negative_fine_is_quarantined_as_below_minimum(tmp_path: Path) -> None:
    penalty = {
        "case_id": "C1",
        "enterprise_id": E1,
        "decided_on": "2022-01-05",
        "severity": "moderate",
        "fine_cny": "-200",
    }
    run(source(tmp_path, penalties=[penalty]), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "below_minimum")
    assert (entry["table"], entry["row_number"], entry["column"], entry["value"]) == (
        "penalties",
        1,
        "fine_cny",
        "-200",
    )
    assert entry["reason"] == "must be ≥ 0"


def test_date_after_the_ingest_day_is_quarantined(tmp_path: Path) -> None:
    run(source(tmp_path, inspections=[inspection(inspected_on="2025-07-01")]), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "future_date")
    assert (entry["row_number"], entry["column"], entry["value"]) == (1, "inspected_on", "2025-07-01")
    assert entry["reason"] == "date is after the ingest day 2025-06-30"


def test_founding_after_the_ingest_day_is_quarantined(tmp_path: Path) -> None:
    run(source(tmp_path, enterprises=[enterprise(E1, established_on="2030-01-01")]), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "future_date")
    assert (entry["table"], entry["column"], entry["value"]) == (
        "enterprises",
        "established_on",
        "2030-01-01",
    )


def test_event_before_1990_is_quarantined(tmp_path: Path) -> None:
    run(source(tmp_path, inspections=[inspection(inspected_on="1989-12-31")]), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "too_early")
    assert (entry["row_number"], entry["column"], entry["value"]) == (1, "inspected_on", "1989-12-31")
    assert entry["reason"] == "date is before 1990-01-01"


def test_enterprise_founded_before_1990_is_accepted(tmp_path: Path) -> None:
    run(source(tmp_path, enterprises=[enterprise(E1, established_on="1985-03-01")]), tmp_path / "lake")
    assert quarantined(tmp_path / "lake") == []
    assert scan_table(tmp_path / "lake", "enterprises").collect().height == 1


def test_record_entered_before_its_event_is_quarantined(tmp_path: Path) -> None:
    run(source(tmp_path, inspections=[inspection(recorded_on="2021-03-01")]), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "date_order")
    assert (entry["row_number"], entry["column"], entry["value"]) == (1, "recorded_on", "2021-03-01")
    assert entry["reason"] == "recorded_on is before inspected_on (2021-03-04)"


def test_licence_expiring_before_issue_is_quarantined(tmp_path: Path) -> None:
    licence = {
        "license_id": "L1",
        "enterprise_id": E1,
        "kind": "ccc",
        "issued_on": "2020-01-01",
        "expires_on": "2019-12-31",
        "status": "valid",
        "status_changed_on": "2020-01-01",
    }
    run(source(tmp_path, licenses=[licence]), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "date_order")
    assert (entry["table"], entry["column"], entry["value"]) == ("licenses", "expires_on", "2019-12-31")
    assert entry["reason"] == "expires_on is before issued_on (2020-01-01)"


def test_licence_may_expire_after_the_ingest_day(tmp_path: Path) -> None:
    licence = {
        "license_id": "L1",
        "enterprise_id": E1,
        "kind": "ccc",
        "issued_on": "2020-01-01",
        "expires_on": "2030-01-01",
        "status": "valid",
        "status_changed_on": "2020-01-01",
    }
    report = run(source(tmp_path, licenses=[licence]), tmp_path / "lake")
    assert report.tables["licenses"]["accepted"] == 1


def test_wrong_uscc_check_character_is_quarantined(tmp_path: Path) -> None:
    bad = E2[:17] + ("0" if E2[17] != "0" else "1")
    run(source(tmp_path, enterprises=[enterprise(E1), enterprise(bad)]), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "bad_uscc")
    assert (entry["row_number"], entry["column"], entry["value"]) == (2, "enterprise_id", bad)
    assert entry["reason"] == uscc_problem(bad)


def test_event_of_an_unknown_enterprise_is_quarantined(tmp_path: Path) -> None:
    stranger = uscc(99)
    run(source(tmp_path, inspections=[inspection("I1"), inspection("I2", eid=stranger)]), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "unknown_reference")
    assert (entry["row_number"], entry["column"], entry["value"]) == (2, "enterprise_id", stranger)
    assert "not in enterprises" in entry["reason"]


def test_event_of_an_enterprise_rejected_in_the_same_run_says_so(tmp_path: Path) -> None:
    src = source(
        tmp_path,
        enterprises=[enterprise(E1), enterprise(E2, status="closed")],
        inspections=[inspection("I1", eid=E2)],
    )
    run(src, tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "unknown_reference")
    assert (entry["table"], entry["row_number"], entry["value"]) == ("inspections", 1, E2)
    assert entry["reason"] == "enterprise_id is quarantined in this run's enterprises; fix that row first"


def test_credit_repair_of_an_unknown_case_is_quarantined(tmp_path: Path) -> None:
    penalty = {"case_id": "C1", "enterprise_id": E1, "decided_on": "2022-01-05", "severity": "moderate"}
    repairs = [
        {"repair_id": "R1", "case_id": "C1", "repaired_on": "2022-06-01"},
        {"repair_id": "R2", "case_id": "C9", "repaired_on": "2022-06-01"},
    ]
    run(source(tmp_path, penalties=[penalty], credit_repairs=repairs), tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "unknown_reference")
    assert (entry["table"], entry["row_number"], entry["column"], entry["value"]) == (
        "credit_repairs",
        2,
        "case_id",
        "C9",
    )


def test_event_of_an_enterprise_already_in_the_lake_is_accepted(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    run(source(tmp_path, "first"), lake)
    later = tmp_path / "second"
    write_csv(later, "enterprises", [], fields=list(enterprise()))
    write_csv(later, "inspections", [inspection()])
    report = run(later, lake)
    assert report.tables["inspections"] == {"read": 1, "accepted": 1, "quarantined": 0, "duplicates": 0}


def test_ids_repeated_with_different_content_in_one_source_are_all_quarantined(tmp_path: Path) -> None:
    src = source(tmp_path, inspections=[inspection("I1"), inspection("I2"), inspection("I1", outcome="fail")])
    report = run(src, tmp_path / "lake")
    entries = [e for e in quarantined(tmp_path / "lake") if e["rule"] == "duplicate_id"]
    assert [(e["row_number"], e["column"], e["value"]) for e in entries] == [
        (1, "inspection_id", "I1"),
        (3, "inspection_id", "I1"),
    ]
    assert "rows 1, 3" in entries[0]["reason"]
    assert report.tables["inspections"] == {"read": 3, "accepted": 1, "quarantined": 2, "duplicates": 0}


def test_exact_duplicate_rows_in_one_source_count_as_duplicates(tmp_path: Path) -> None:
    src = source(tmp_path, inspections=[inspection("I1"), inspection("I1"), inspection("I2")])
    report = run(src, tmp_path / "lake")
    assert report.tables["inspections"] == {"read": 3, "accepted": 2, "quarantined": 0, "duplicates": 1}


def test_same_id_with_different_content_is_a_conflict_never_overwritten(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    run(source(tmp_path, "first"), lake)
    changed = source(
        tmp_path, "second", enterprises=[enterprise(E1, status="revoked"), enterprise(E2, name="武汉乙公司")]
    )
    report = run(changed, lake)
    entry = only_entry(lake, "conflict")
    assert (entry["source_file"], entry["row_number"], entry["column"], entry["value"]) == (
        str(changed / "enterprises.csv"),
        1,
        "status",
        "revoked",
    )
    assert (
        entry["reason"] == f"enterprise_id {E1} is already in the lake with status = active; not overwritten"
    )
    assert report.tables["enterprises"] == {"read": 2, "accepted": 0, "quarantined": 1, "duplicates": 1}
    assert scan_table(lake, "enterprises").filter(pl.col("enterprise_id") == E1).collect()[
        "status"
    ].to_list() == ["active"]


def test_a_row_breaking_several_rules_is_counted_once(tmp_path: Path) -> None:
    src = source(tmp_path, inspections=[inspection(kind="surprise", outcome="", inspected_on="1980-01-01")])
    report = run(src, tmp_path / "lake")
    assert {e["rule"] for e in quarantined(tmp_path / "lake")} == {"bad_enum", "missing_value", "too_early"}
    assert report.tables["inspections"]["quarantined"] == 1


# --- the USCC check, vectorised ------------------------------------------------------------------------


USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Codes near the valid ones (one character changed) and arbitrary short strings with foreign characters.
NEAR_VALID = st.builds(
    lambda i, pos, ch: (lambda c: c[:pos] + ch + c[pos + 1 :])(uscc(i)),
    st.integers(0, 999_999_999),
    st.integers(0, 17),
    st.sampled_from(USCC_CHARS + "IOSVZa"),
)
ANY_TEXT = st.text(alphabet=USCC_CHARS + "IOSVZa -", max_size=20)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(NEAR_VALID, ANY_TEXT), min_size=1, max_size=60))
def test_vectorised_uscc_check_agrees_with_the_contract(codes: list[str]) -> None:
    checked = pl.DataFrame({"c": codes}).select(
        uscc_reason(pl.col("c")).alias("reason"), uscc_valid(pl.col("c")).alias("valid")
    )
    assert checked["reason"].to_list() == [uscc_problem(c) for c in codes]
    assert checked["valid"].to_list() == [uscc_problem(c) is None for c in codes]


# --- conservation ----------------------------------------------------------------------------------------


def test_every_row_read_is_accepted_quarantined_or_a_duplicate(tmp_path: Path) -> None:
    inspections = [
        inspection("I1"),
        inspection("I1"),
        inspection("I2", outcome="?"),
        inspection("I3", eid=uscc(50)),
        inspection("I4", findings_minor="-1"),
        inspection("I5"),
    ]
    report = run(source(tmp_path, inspections=inspections), tmp_path / "lake")
    assert report.tables["inspections"] == {"read": 6, "accepted": 2, "quarantined": 3, "duplicates": 1}


BAD_KINDS = ["bad_date", "bad_enum", "negative", "unknown_enterprise", "empty_id"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["good", *BAD_KINDS]), st.integers(0, 6), st.booleans()), max_size=30
    ),
)
def test_conservation_holds_for_any_mix_of_good_and_bad_rows(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, int, bool]]
) -> None:
    tmp = tmp_path_factory.mktemp("mix")
    built = []
    for kind, ident, failed in rows:
        row = inspection(f"I{ident}", outcome="fail" if failed else "pass")
        if kind == "bad_date":
            row["inspected_on"] = "2021-02-30"
        elif kind == "bad_enum":
            row["kind"] = "whim"
        elif kind == "negative":
            row["findings_minor"] = "-3"
        elif kind == "unknown_enterprise":
            row["enterprise_id"] = uscc(77)
        elif kind == "empty_id":
            row["inspection_id"] = ""
        built.append(row)
    lake = tmp / "lake"
    for attempt in ("first", "again"):
        report = run(source(tmp, attempt, inspections=built), lake)
        for counts in report.tables.values():
            assert counts["read"] == counts["accepted"] + counts["quarantined"] + counts["duplicates"]
        q = scan_quarantine(lake).filter(pl.col("run_id") == report.run_id, pl.col("table") == "inspections")
        assert (
            q.select(pl.col("row_number").n_unique()).collect().item()
            == report.tables["inspections"]["quarantined"]
        )
    assert scan_table(lake, "inspections").collect()["inspection_id"].is_duplicated().sum() == 0
