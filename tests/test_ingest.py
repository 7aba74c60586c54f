"""Ingest into the validated lake: quarantine rules, conservation, idempotence, atomicity, the CLI."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine.cli import main
from riskengine.core.errors import FatalInputError
from riskengine.core.ids import uscc_check_char, uscc_problem, uscc_reason, uscc_valid
from riskengine.lake import ingest as ingest_module
from riskengine.lake import layout as lakes
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import scan_quarantine, scan_table

DAY = date(2025, 6, 30)  # the ingest day of every test: no date may lie after it


def uscc(i: int, division: str = "420106") -> str:
    """A valid Unified Social Credit Code numbered ``i``."""
    first17 = f"91{division}{i:09d}"
    return first17 + uscc_check_char(first17)


E1, E2 = uscc(1), uscc(2)


def enterprise(eid: str = E1, **overrides: Any) -> dict[str, Any]:
    row = {
        "enterprise_id": eid,
        "name": "武汉甲公司",
        "district": "420106",
        "sector": "wire_cable",
        "established_on": "2010-05-01",
        "registered_capital": "100",
        "status": "active",
    }
    return {**row, **overrides}


def inspection(iid: str = "I1", eid: str = E1, **overrides: Any) -> dict[str, Any]:
    row = {
        "inspection_id": iid,
        "enterprise_id": eid,
        "inspected_on": "2021-03-04",
        "kind": "random",
        "inspector_id": "P7",
        "outcome": "pass",
        "findings_minor": "0",
    }
    return {**row, **overrides}


def write_csv(folder: Path, table: str, rows: list[dict[str, Any]], fields: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.csv"
    fields = fields or list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def source(tmp_path: Path, name: str = "src", **tables: list[dict[str, Any]]) -> Path:
    folder = tmp_path / name
    tables.setdefault("enterprises", [enterprise(E1), enterprise(E2, name="武汉乙公司")])
    defaults = {"enterprises": list(enterprise()), "inspections": list(inspection())}
    for table, rows in tables.items():
        write_csv(folder, table, rows, fields=None if rows else defaults[table])
    return folder


def run(src: Path, lake: Path, **kwargs: Any) -> ingest_module.IngestReport:
    return ingest(src, lake, ingest_day=DAY, **kwargs)


def quarantined(lake: Path) -> list[dict[str, Any]]:
    return scan_quarantine(lake).collect().to_dicts()


def only_entry(lake: Path, rule: str) -> dict[str, Any]:
    entries = [e for e in quarantined(lake) if e["rule"] == rule]
    assert len(entries) == 1, quarantined(lake)
    return entries[0]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``folder`` with its bytes (folders map to None)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


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


# --- idempotence, append -----------------------------------------------------------------------------


def test_re_ingesting_the_same_source_changes_no_table(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    src = source(tmp_path, inspections=[inspection("I1"), inspection("I2")])
    run(src, lake)
    before = {t: scan_table(lake, t).collect() for t in ("enterprises", "inspections")}
    files_before = lakes.table_files(lake, "enterprises") + lakes.table_files(lake, "inspections")
    report = run(src, lake)
    assert report.tables["enterprises"] == {"read": 2, "accepted": 0, "quarantined": 0, "duplicates": 2}
    assert report.tables["inspections"] == {"read": 2, "accepted": 0, "quarantined": 0, "duplicates": 2}
    assert lakes.table_files(lake, "enterprises") + lakes.table_files(lake, "inspections") == files_before
    for table, frame in before.items():
        assert scan_table(lake, table).collect().equals(frame)


def test_a_later_source_appends_new_rows(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    run(source(tmp_path, "jan", inspections=[inspection("I1")]), lake)
    later = source(
        tmp_path,
        "feb",
        enterprises=[enterprise(E1), enterprise(uscc(3))],
        inspections=[inspection("I1"), inspection("I2", eid=uscc(3))],
    )
    report = run(later, lake)
    assert report.tables["enterprises"] == {"read": 2, "accepted": 1, "quarantined": 0, "duplicates": 1}
    assert report.tables["inspections"] == {"read": 2, "accepted": 1, "quarantined": 0, "duplicates": 1}
    assert sorted(scan_table(lake, "inspections").collect()["inspection_id"]) == ["I1", "I2"]
    assert scan_table(lake, "enterprises").collect().height == 3


# --- fatal input and atomicity -------------------------------------------------------------------------


def test_missing_enterprises_table_is_fatal_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    write_csv(folder, "inspections", [inspection()])
    with pytest.raises(FatalInputError, match="missing required table enterprises"):
        run(folder, tmp_path / "lake")
    assert not (tmp_path / "lake").exists()


def test_missing_required_column_is_fatal_and_leaves_the_lake_untouched(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    run(source(tmp_path, "first", inspections=[inspection()]), lake)
    before = snapshot(lake)
    rows = [{k: v for k, v in inspection("I9").items() if k != "outcome"}]
    with pytest.raises(
        FatalInputError, match=r"inspections\.csv: table inspections is missing required column outcome"
    ):
        run(source(tmp_path, "second", enterprises=[enterprise(uscc(5))], inspections=rows), lake)
    assert snapshot(lake) == before


def test_source_that_is_not_a_folder_is_fatal(tmp_path: Path) -> None:
    file = tmp_path / "enterprises.csv"
    file.write_text("x\n")
    with pytest.raises(FatalInputError, match="not a folder"):
        run(file, tmp_path / "lake")


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_before_the_commit_point_leaves_the_lake_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    lake = tmp_path / "lake"
    run(source(tmp_path, "first", inspections=[inspection("I1")]), lake)
    before = snapshot(lake)

    def failing_move(src: Path, dst: Path) -> None:
        raise error  # the first move is the report's: the commit point

    monkeypatch.setattr(ingest_module, "_move", failing_move)
    later = source(tmp_path, "second", enterprises=[enterprise(uscc(3))],
                   inspections=[inspection("I2", eid=uscc(3))])
    with pytest.raises(type(error)):
        run(later, lake)
    assert snapshot(lake) == before


def test_failure_after_the_commit_point_leaves_a_whole_run_that_the_next_ingest_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    run(source(tmp_path, "first", inspections=[inspection("I1")]), lake)
    real_move, moves = ingest_module._move, []

    def failing_move(src: Path, dst: Path) -> None:
        if len(moves) == 2:  # the report and the enterprises moved; the inspections fail
            raise OSError("disk full")
        moves.append(dst)
        real_move(src, dst)

    monkeypatch.setattr(ingest_module, "_move", failing_move)
    later = source(tmp_path, "second", enterprises=[enterprise(uscc(3))],
                   inspections=[inspection("I2", eid=uscc(3))])
    with pytest.raises(OSError, match="disk full"):
        run(later, lake)
    monkeypatch.undo()
    assert scan_table(lake, "inspections").collect().height == 2  # read from staging
    report = run(source(tmp_path, "third", enterprises=[enterprise(uscc(4))]), lake)
    assert len(report.recovered_runs) == 1
    assert duckdb.sql(f"select count(*) from '{lake}/inspections/*.parquet'").fetchall() == [(2,)]
    assert not (lake / lakes.STAGING_DIR).exists()


def test_failure_while_validating_a_new_lake_leaves_no_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_module, "_against_lake", boom)
    with pytest.raises(KeyboardInterrupt):
        run(source(tmp_path), tmp_path / "lake")
    assert not (tmp_path / "lake").exists()


KILL_SCRIPT = """
import os, sys
from datetime import date
from riskengine.lake import ingest as m
steps = []
def step(name):
    steps.append(name)
    if len(steps) == int(sys.argv[3]):
        os._exit(9)
m._commit_step = step
m.ingest(sys.argv[1], sys.argv[2], ingest_day=date(2025, 6, 30))
print(len(steps))
"""


def _plain_ids(lake: Path, table: str, column: str) -> set[str]:
    """What a plain reader (the README's DuckDB query) sees: every Parquet file in the table folder."""
    if not any((lake / table).glob("*.parquet")):
        return set()
    rows = duckdb.sql(f"select {column} from '{lake}/{table}/*.parquet'").fetchall()
    return {r[0] for r in rows}


def test_a_hard_kill_after_any_commit_step_never_shows_an_uncommitted_row(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    lake = tmp_path / "lake"
    run(source(tmp_path, "first", inspections=[inspection("I1")]), lake)
    killed = source(tmp_path, "second", enterprises=[enterprise(uscc(3))],
                    inspections=[inspection("I2", eid=uscc(3))])
    before = {"enterprises": {E1, E2}, "inspections": {"I1"}}
    after = {"enterprises": {E1, E2, uscc(3)}, "inspections": {"I1", "I2"}}
    key = {"enterprises": "enterprise_id", "inspections": "inspection_id"}
    # A dry run counts the steps (staged, committed, one per file moved, published).
    dry = shutil.copytree(lake, tmp_path / "dry")
    done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(killed), str(dry), "0"],
                          capture_output=True, text=True, check=True)
    n_steps = int(done.stdout.split()[-1])
    assert n_steps == 6
    for k in range(1, n_steps + 1):
        trial = tmp_path / f"kill{k}"
        shutil.copytree(lake, trial)
        proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(killed), str(trial), str(k)],
                              capture_output=True, text=True)
        assert proc.returncode == 9, proc.stderr
        committed = len(list((trial / lakes.REPORTS_DIR).glob("*.json"))) == 2
        expected = after if committed else before
        for table, column in key.items():
            plain = _plain_ids(trial, table, column)
            assert before[table] <= plain <= expected[table], (k, table, plain)
            engine = set(scan_table(trial, table).collect().get_column(column).to_list())
            assert engine == expected[table], (k, table)
        run(source(tmp_path, f"later{k}", enterprises=[enterprise(uscc(9))]), trial)
        for table, column in key.items():
            assert _plain_ids(trial, table, column) - {uscc(9)} == expected[table], (k, table)
        assert not (trial / lakes.STAGING_DIR).exists()


# --- id schemes, formats, extra columns --------------------------------------------------------------------


def test_id_scheme_any_accepts_any_non_empty_id(tmp_path: Path) -> None:
    src = source(
        tmp_path,
        enterprises=[enterprise("shop-001"), enterprise("")],
        inspections=[inspection(eid="shop-001")],
    )
    report = run(src, tmp_path / "lake", id_scheme="any")
    assert report.tables["enterprises"] == {"read": 2, "accepted": 1, "quarantined": 1, "duplicates": 0}
    assert only_entry(tmp_path / "lake", "missing_value")["column"] == "enterprise_id"
    assert report.tables["inspections"]["accepted"] == 1


def test_default_id_scheme_rejects_a_non_uscc_id(tmp_path: Path) -> None:
    run(source(tmp_path, enterprises=[enterprise("shop-001")]), tmp_path / "lake")
    assert only_entry(tmp_path / "lake", "bad_uscc")["reason"] == "USCC must be 18 characters; got 8"


def test_parquet_source_with_typed_columns_is_validated_like_csv(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    pl.DataFrame(
        {
            "enterprise_id": [E1, E2],
            "district": ["420106", "420102"],
            "sector": ["food_related", "retail"],
            "established_on": [date(2001, 1, 1), date(2031, 1, 1)],
            "registered_capital": [5.0, None],
            "status": ["active", "active"],
        }
    ).write_parquet(folder / "enterprises.parquet")
    pl.DataFrame(
        {
            "test_id": ["T1", "T2"],
            "enterprise_id": [E1, E1],
            "sampled_on": [date(2022, 5, 1), date(2022, 6, 1)],
            "result": ["fail", "pass"],
            "hazard": ["high", None],
        }
    ).write_parquet(folder / "sampling_tests.parquet")
    report = run(folder, tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "future_date")
    assert (entry["source_file"], entry["row_number"], entry["value"]) == (
        str(folder / "enterprises.parquet"),
        2,
        "2031-01-01",
    )
    assert report.tables["sampling_tests"]["accepted"] == 2
    tests = scan_table(tmp_path / "lake", "sampling_tests").sort("test_id").collect()
    assert tests["sampled_on"].to_list() == [date(2022, 5, 1), date(2022, 6, 1)]


def test_same_table_as_csv_and_parquet_is_fatal(tmp_path: Path) -> None:
    src = source(tmp_path)
    pl.read_csv(src / "enterprises.csv").write_parquet(src / "enterprises.parquet")
    with pytest.raises(FatalInputError, match="given twice"):
        run(src, tmp_path / "lake")


def test_extra_columns_are_ignored_and_named_in_the_report(tmp_path: Path) -> None:
    report = run(source(tmp_path, enterprises=[enterprise(E1, 备注="x")]), tmp_path / "lake")
    assert report.ignored_columns == {"enterprises": ["备注"]}
    assert "备注" not in scan_table(tmp_path / "lake", "enterprises").collect_schema().names()


def test_missing_optional_counts_take_their_default(tmp_path: Path) -> None:
    run(source(tmp_path, inspections=[inspection(findings_minor="")]), tmp_path / "lake")
    row = scan_table(tmp_path / "lake", "inspections").collect().row(0, named=True)
    assert (row["findings_minor"], row["findings_serious"], row["recorded_on"]) == (0, 0, None)


# --- the lake, the report, the CLI ---------------------------------------------------------------------


def test_duckdb_reads_tables_and_quarantine_of_the_lake(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    run(source(tmp_path, inspections=[inspection("I1"), inspection("I2", outcome="x")]), lake)
    assert duckdb.sql(f"select count(*) from '{lake}/enterprises/*.parquet'").fetchall() == [(2,)]
    assert duckdb.sql(f"select count(*) from '{lake}/inspections/*.parquet'").fetchall() == [(1,)]
    assert duckdb.sql(
        f'select "table", row_number, "column", value from \'{lake}/_quarantine/*.parquet\''
    ).fetchall() == [("inspections", 2, "outcome", "x")]


def test_report_json_in_the_lake_has_the_contract_shape(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    report = run(source(tmp_path, inspections=[inspection("I1", kind="x")]), lake)
    saved = json.loads((lake / "_reports" / f"{report.run_id}.json").read_text(encoding="utf-8"))
    assert saved["tables"] == {
        "enterprises": {"read": 2, "accepted": 2, "quarantined": 0, "duplicates": 0},
        "inspections": {"read": 1, "accepted": 0, "quarantined": 1, "duplicates": 0},
    }
    top = saved["quarantine"]["top_reasons"][0]
    assert (top["table"], top["column"], top["rule"], top["rows"], top["label_zh"]) == (
        "inspections",
        "kind",
        "bad_enum",
        1,
        "取值不在允许范围",
    )


def test_cli_ingest_prints_the_report_and_exits_0_with_quarantined_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = source(tmp_path, inspections=[inspection("I1"), inspection("I2", outcome="x")])
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", str(src), "--lake", str(tmp_path / "lake"), "--ingest-day", "2025-06-30"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0
    assert "inspections" in out and "隔离" in out and "bad_enum" in out
    assert "1 rows quarantined" in err


def test_cli_missing_enterprises_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "src"
    write_csv(folder, "inspections", [inspection()])
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", str(folder), "--lake", str(tmp_path / "lake")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip().count("\n") == 0 and "enterprises" in err


def test_cli_source_not_a_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", str(tmp_path / "nowhere"), "--lake", str(tmp_path / "lake")])
    assert exit_info.value.code == 2
    assert "not a folder" in capsys.readouterr().err


def test_cli_unknown_id_scheme_exits_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", str(source(tmp_path)), "--lake", str(tmp_path / "lake"), "--id-scheme", "tax"])
    assert exit_info.value.code == 2


# --- malformed files ---------------------------------------------------------------------------------


def test_row_with_more_fields_than_the_header_is_quarantined_whole(tmp_path: Path) -> None:
    src = source(tmp_path)
    header = ",".join(inspection())
    good = ",".join(inspection("I1").values())
    ragged = ",".join(inspection("I2").values()) + ",stray"
    (src / "inspections.csv").write_text(f"{header}\n{good}\n{ragged}\n", encoding="utf-8")
    report = run(src, tmp_path / "lake")
    entry = only_entry(tmp_path / "lake", "bad_shape")
    assert (entry["row_number"], entry["column"], entry["value"]) == (2, "(row)", "stray")
    assert report.tables["inspections"] == {"read": 2, "accepted": 1, "quarantined": 1, "duplicates": 0}


def test_csv_with_an_excel_byte_order_mark_is_read(tmp_path: Path) -> None:
    src = source(tmp_path)
    text = (src / "enterprises.csv").read_text(encoding="utf-8")
    (src / "enterprises.csv").write_text("\ufeff" + text, encoding="utf-8")
    assert run(src, tmp_path / "lake").tables["enterprises"]["accepted"] == 2


def test_csv_not_in_utf8_is_fatal_and_named(tmp_path: Path) -> None:
    src = source(tmp_path)
    text = (src / "enterprises.csv").read_text(encoding="utf-8")
    (src / "enterprises.csv").write_bytes(text.encode("gbk"))
    with pytest.raises(FatalInputError, match=r"enterprises\.csv: not UTF-8"):
        run(src, tmp_path / "lake")
    assert not (tmp_path / "lake").exists()


# --- a generated city ------------------------------------------------------------------------------------


def test_a_clean_generated_city_is_accepted_whole(small_city: Path, small_lake: Path) -> None:
    report = ingest_module.read_report(small_lake)
    for table, counts in report["tables"].items():
        rows = pl.scan_csv(small_city / f"{table}.csv", infer_schema=False).select(pl.len()).collect().item()
        assert counts == {"read": rows, "accepted": rows, "quarantined": 0, "duplicates": 0}, table
    # Only the credit office's decided cases void records and take entries off a list later.
    assert report["absent_tables"] == ["list_removals", "record_voids"]


# Which quarantine rule catches each kind of bad row the generator injects (riskengine.synth.dirty).
DIRTY_KIND_RULE = {
    "bad_check_char": "bad_uscc",
    "unknown_enterprise": "unknown_reference",
    "unknown_case": "unknown_reference",
    "future_date": "future_date",
    "date_before_1990": "too_early",
    "unparseable_date": "bad_type",
    "negative_value": "below_minimum",
    "bad_enum": "bad_enum",
    "conflicting_duplicate": "duplicate_id",
    "missing_required": "missing_value",
}


def test_every_kind_of_injected_bad_row_is_caught(tmp_path: Path) -> None:
    from riskengine.synth import generate_city

    summary = generate_city(tmp_path / "city", n_enterprises=800, seed=11, dirty=0.05)
    report = ingest(tmp_path / "city", tmp_path / "lake")
    rules = {e["rule"] for e in quarantined(tmp_path / "lake")}
    injected = {kind for kind, n in summary["injected"]["by_kind"].items() if n}
    for kind in injected & DIRTY_KIND_RULE.keys():
        assert DIRTY_KIND_RULE[kind] in rules, kind
    if "exact_duplicate" in injected:
        assert sum(t["duplicates"] for t in report.tables.values()) > 0
    for counts in report.tables.values():
        assert counts["read"] == counts["accepted"] + counts["quarantined"] + counts["duplicates"]


def test_a_second_ingest_while_one_is_writing_is_refused(tmp_path: Path) -> None:
    import fcntl

    from riskengine.core.errors import RiskEngineError

    lake = tmp_path / "lake"
    run(source(tmp_path, "first"), lake)
    before = snapshot(lake)
    with open(lake / lakes.LOCK_FILE, "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RiskEngineError, match="another ingest is writing"):
            run(source(tmp_path, "second", enterprises=[enterprise(uscc(4))]), lake)
    assert snapshot(lake) == before


def test_cli_writes_the_runs_quarantine_as_an_excel_list_in_chinese(tmp_path: Path) -> None:
    src = source(tmp_path, inspections=[inspection("I1"), inspection("I2", outcome="x")])
    out = tmp_path / "quarantine.xlsx"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "ingest",
                str(src),
                "--lake",
                str(tmp_path / "lake"),
                "--ingest-day",
                "2025-06-30",
                "--quarantine-out",
                str(out),
            ]
        )
    assert exit_info.value.code == 0
    import openpyxl

    rows = list(openpyxl.load_workbook(out).active.iter_rows(values_only=True))
    header = list(rows[0])
    assert header[:3] == ["表 table", "源文件 source file", "行号 row"]
    entry = dict(zip(header, rows[1], strict=True))
    assert (entry["行号 row"], entry["列 column"], entry["值 value"], entry["问题 problem"]) == (
        2,
        "outcome",
        "x",
        "取值不在允许范围",
    )
    assert len(rows) == 2


# --- concurrent ingests ------------------------------------------------------------------------------


def _run_paused(src: Path, lake: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, dict[str, Any]]:
    """Start an ingest in a thread and hold it mid-validation (lock taken, staging in use)."""
    import threading

    inside, release = threading.Event(), threading.Event()
    real = ingest_module._against_lake
    outcome: dict[str, Any] = {}

    def slow(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_against_lake", slow)

    def target() -> None:
        try:
            outcome["report"] = run(src, lake)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    assert inside.wait(10)
    return thread, release, outcome


def test_a_refused_ingest_leaves_the_running_ones_staging_and_lock_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from riskengine.core.errors import RiskEngineError

    lake = tmp_path / "lake"
    run(source(tmp_path, "first"), lake)
    thread, release, outcome = _run_paused(
        source(tmp_path, "second", enterprises=[enterprise(uscc(5))]), lake, monkeypatch)
    try:
        staged = sorted(p.relative_to(lake) for p in (lake / lakes.STAGING_DIR).rglob("*"))
        with pytest.raises(RiskEngineError, match="another ingest is writing"):
            run(source(tmp_path, "third", enterprises=[enterprise(uscc(6))]), lake)
        assert (lake / lakes.LOCK_FILE).exists()
        assert sorted(p.relative_to(lake) for p in (lake / lakes.STAGING_DIR).rglob("*")) == staged
    finally:
        release.set()
        thread.join(20)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"].tables["enterprises"]["accepted"] == 1


# --- malformed CSV: quarantined, never fatal ----------------------------------------------------------


def _inspections_file(src: Path, *lines: str) -> None:
    header = ",".join(inspection())
    (src / "inspections.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")


def test_a_row_with_several_extra_fields_is_quarantined_not_fatal(tmp_path: Path) -> None:
    src = source(tmp_path)
    good = [",".join(inspection(f"I{i}").values()) for i in range(1, 4)]
    _inspections_file(src, ",".join(inspection("I9").values()) + ",x,y,z", *good)
    report = run(src, tmp_path / "lake")
    assert report.tables["inspections"] == {"read": 4, "accepted": 3, "quarantined": 1, "duplicates": 0}
    assert only_entry(tmp_path / "lake", "bad_shape")["row_number"] == 1


def test_an_unbalanced_quote_quarantines_its_row_only(tmp_path: Path) -> None:
    src = source(tmp_path)
    good = [",".join(inspection(f"I{i}").values()) for i in range(1, 4)]
    broken = ",".join(inspection("I9", inspector_id='"P7').values())
    _inspections_file(src, good[0], broken, *good[1:])
    report = run(src, tmp_path / "lake")
    assert report.tables["inspections"] == {"read": 4, "accepted": 3, "quarantined": 1, "duplicates": 0}
    entry = only_entry(tmp_path / "lake", "bad_shape")
    assert entry["row_number"] == 2 and "I9" in entry["value"]


def test_a_quoted_field_may_span_lines(tmp_path: Path) -> None:
    src = source(tmp_path)
    good = [",".join(inspection(f"I{i}").values()) for i in range(1, 3)]
    multi = ",".join(inspection("I9", inspector_id='"P\n7').values()).replace('"P\n7', '"P\n7"')
    _inspections_file(src, good[0], multi, good[1], '"unbalanced')
    report = run(src, tmp_path / "lake")
    assert report.tables["inspections"]["read"] == 4 and report.tables["inspections"]["accepted"] == 3
    assert "P\n7" in scan_table(tmp_path / "lake", "inspections").collect()["inspector_id"].to_list()


def test_nul_bytes_and_oversized_cells_are_quarantined_and_the_report_stays_small(tmp_path: Path) -> None:
    from riskengine.lake.validate import MAX_CELL_CHARS

    huge = "长" * 5_000_000
    src = source(tmp_path, enterprises=[enterprise(E1, name="甲\x00公司"), enterprise(E2, name=huge),
                                        enterprise(uscc(3))])
    report = run(src, tmp_path / "lake")
    assert report.tables["enterprises"]["quarantined"] == 2
    assert only_entry(tmp_path / "lake", "bad_char")["column"] == "name"
    long_entry = only_entry(tmp_path / "lake", "too_long")
    assert len(long_entry["value"]) < 300 and f"{MAX_CELL_CHARS:,}" in long_entry["reason"]
    report_file = tmp_path / "lake" / lakes.REPORTS_DIR / f"{report.run_id}.json"
    assert report_file.stat().st_size < 20_000
