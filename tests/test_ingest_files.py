"""Ingest's inputs and outputs: id schemes, CSV and Parquet sources, malformed files, the lake DuckDB
reads, the report, the CLI and a generated city."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from riskengine.cli import main
from riskengine.core.errors import FatalInputError
from riskengine.lake import ingest as ingest_module
from riskengine.lake import layout as lakes
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import scan_table
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
