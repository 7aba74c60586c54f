"""Every export officers open in a spreadsheet is safe: text cells never become formulas (xlsx), and
CSV cells that a spreadsheet would run are escaped the way OWASP's CSV-injection guidance says."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from riskengine.core import exports

# OWASP's examples: each must come back as inert text.
PAYLOADS = ["=SUM(1;2)", "+1+2", "-2+3", "@SUM(1)", "\t=1", "\r=1", "=HYPERLINK(\"http://x\",\"y\")"]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def check_csv(path: Path, payloads: list[str] = PAYLOADS) -> None:
    """No cell starts like a formula; every payload is present, escaped with a leading quote."""
    text = path.read_bytes().decode("utf-8-sig")
    cells = [c for row in csv.reader(text.splitlines(keepends=True)) for c in row]
    for cell in cells:
        assert not cell.startswith(DANGEROUS) or _is_number(cell), repr(cell)
    for payload in payloads:
        assert "'" + payload in cells, (payload, cells)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def check_xlsx(path: Path, payloads: list[str] = PAYLOADS) -> None:
    """Every cell is a value (openpyxl reads formulas as data type 'f'); the payloads are plain text."""
    import openpyxl

    book = openpyxl.load_workbook(path)
    seen = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                seen.add(cell.value)
    for payload in payloads:
        if "\r" not in payload:  # XML keeps no bare carriage return
            assert payload in seen, payload


def test_escape_leaves_numbers_and_plain_text_alone() -> None:
    assert exports.escape_cell("-3.5") == "-3.5"
    assert exports.escape_cell("-1e5") == "-1e5"
    assert exports.escape_cell("武昌区") == "武昌区"
    assert exports.escape_cell("-x") == "'-x"
    assert exports.escape_cell("+86 27 1234") == "'+86 27 1234"


def test_grades_export_is_safe_as_csv_and_xlsx(tmp_path: Path) -> None:
    from riskengine.core.contract import GRADES_SCHEMA
    from riskengine.workflows.scoring import write_grades

    n = len(PAYLOADS)
    grades = pl.DataFrame({
        "enterprise_id": [f"E{i}" for i in range(n)], "as_of": [date(2025, 7, 1)] * n,
        "name": PAYLOADS, "district": PAYLOADS, "sector": ["retail"] * n, "probability": [0.1] * n,
        "score": [100] * n, "grade": ["A"] * n, "model_grade": ["A"] * n, "rule": [None] * n,
        "reasons": [[{"code": "x", "contribution": 0.1, "text_zh": p, "text_en": p}] for p in PAYLOADS],
        "model_version": ["1"] * n,
    }, schema=GRADES_SCHEMA)
    write_grades(grades, tmp_path / "g.csv")
    check_csv(tmp_path / "g.csv")
    write_grades(grades, tmp_path / "g.xlsx")
    check_xlsx(tmp_path / "g.xlsx")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_plan_files_from_the_cli_are_safe(tmp_path: Path, suffix: str) -> None:
    from riskengine.supervision.plan import plan_csv_bytes
    from riskengine.workflows.planning import write_plan_files
    from tests.test_planning import grades_frame, plan_for

    grades = grades_frame(len(PAYLOADS) * 8, districts=tuple(PAYLOADS))
    grades = grades.with_columns(pl.lit("=cmd|' /C calc'!A0").alias("name"))
    result = plan_for(grades, len(PAYLOADS) * 4)
    out = tmp_path / f"plan{suffix}"
    write_plan_files(result, out)
    (check_csv if suffix == ".csv" else check_xlsx)(out)
    (tmp_path / "api.csv").write_bytes(plan_csv_bytes(result.plan))
    check_csv(tmp_path / "api.csv")


def test_plan_csv_from_the_api_is_safe(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.api_helpers import make_service, make_world, plan_frame

    world = make_world(tmp_path)
    plan = plan_frame().with_columns(pl.lit("=SUM(1;2)").alias("name"), pl.lit("@x").alias("inspector"))
    world.store.save_plan(plan, {"period": "2025-08", "as_of": "2025-08-01"})
    service = make_service(world)
    with TestClient(create_app(service=service)) as client:
        response = client.get("/v1/inspection-plan", params={"period": "2025-08"},
                              headers={**world.headers("credit_office"), "Accept": "text/csv"})
    assert response.status_code == 200
    (tmp_path / "api.csv").write_bytes(response.content)
    check_csv(tmp_path / "api.csv", ["=SUM(1;2)", "@x"])


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_quarantine_list_is_safe(tmp_path: Path, suffix: str) -> None:
    from riskengine.lake.ingest import export_quarantine
    from tests.ingest_helpers import enterprise, run, source, uscc

    payloads = [p for p in PAYLOADS if "\r" not in p]  # a CSV source cannot carry a bare CR in a cell
    src = source(tmp_path, enterprises=[enterprise(uscc(i), status=p) for i, p in enumerate(payloads)])
    report = run(src, tmp_path / "lake")
    assert report.quarantined == len(payloads)
    out = tmp_path / f"q{suffix}"
    export_quarantine(tmp_path / "lake", report.run_id, out)
    (check_csv if suffix == ".csv" else check_xlsx)(out, payloads)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_audit_export_is_safe(tmp_path: Path, suffix: str) -> None:
    from riskengine.core.audit import export_audit, make_entry
    from riskengine.core.store import Store

    store = Store(tmp_path / "s.duckdb")
    store.append_audit([make_entry("read_grade", resource=p, detail=p, status=200, key_name=p,
                                   occurred_at=datetime(2025, 7, 1)) for p in PAYLOADS])
    out = tmp_path / f"audit{suffix}"
    export_audit(store, None, out)
    (check_csv if suffix == ".csv" else check_xlsx)(out)


def test_lazy_and_eager_escaping_agree() -> None:
    frame = pl.DataFrame({"district": PAYLOADS, "n": list(range(len(PAYLOADS)))})
    assert exports.csv_safe_lazy(frame.lazy()).collect().equals(exports.csv_safe(frame))
