"""`riskengine plan` as an officer runs it: without --grades (the serving store's grades), without
--seed (a fresh seed, recorded so the draw replays), with --inspectors FILE, and the Excel's
over-capacity rows in red."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from riskengine.core.config import get_settings
from riskengine.core.contract import GRADES_SCHEMA, STATUS_OVER
from riskengine.core.store import Store
from riskengine.supervision.simulate import grades_from_truth, read_source_table, read_truth
from riskengine.workflows.planning import meta_path, write_plan_files
from riskengine.workflows.reports.excel import STATUS_LABELS
from tests.test_planning import AS_OF, _run, grades_frame, inspection, plan_for, tables_of

RED = "FFC00000"


@pytest.fixture()
def home(small_city: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """RISKENGINE_HOME in tmp_path, its serving store holding grades as of AS_OF."""
    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    get_settings.cache_clear()
    grades = grades_from_truth(read_truth(small_city), read_source_table(small_city, "enterprises"), AS_OF)
    grades = grades.with_columns(  # a `riskengine score` output has these too
        pl.lit(0.05).alias("probability"), pl.col("grade").alias("model_grade"),
        pl.lit(None, pl.String).alias("rule"), pl.lit([], GRADES_SCHEMA["reasons"]).alias("reasons"),
        pl.lit("test").alias("model_version"))
    Store(get_settings().store_file).save_grades(grades)
    yield tmp_path, grades
    get_settings.cache_clear()


def _seed_line(err: str) -> int:
    line = next(line for line in err.splitlines() if line.startswith("seed: "))
    return int(line.split("seed: ")[1].split()[0])


def test_without_grades_or_seed_the_store_grades_and_a_fresh_recorded_seed_are_used(
    home, small_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, grades = home
    seeds = []
    for name in ("a", "b"):
        out = folder / f"plan-{name}.csv"
        assert _run(["plan", "--lake", str(small_lake), "--as-of", AS_OF.isoformat(), "--capacity", "4",
                     "--out", str(out), "--no-store"]) == 0
        err = capsys.readouterr().err
        meta = json.loads(meta_path(out).read_text(encoding="utf-8"))
        source = dict(meta["grades_source"])
        assert Path(source.pop("snapshot")).is_file()  # the store's grades kept beside the plan
        store = str(get_settings().store_file)
        assert source == {"kind": "store", "store": store, "as_of": AS_OF.isoformat()}
        assert f"grades: from the serving store {get_settings().store_file}" in err
        assert _seed_line(err) == meta["seed"] and 0 <= meta["seed"] < 2**31
        seeds.append(meta["seed"])
        planned = set(pl.read_csv(out, schema_overrides={"enterprise_id": pl.String})["enterprise_id"])
        assert planned and planned <= set(grades["enterprise_id"])  # the store's enterprises
    assert seeds[0] != seeds[1]  # fresh each run (a fixed default would repeat)
    assert _run(["plan", "--replay", str(meta_path(out))]) == 0  # and the recorded seed replays
    assert "identical list" in capsys.readouterr().err


def test_an_inspectors_file_is_the_only_pool_used(home, small_lake: Path) -> None:
    folder, grades = home
    districts = sorted(set(grades["district"]))
    pool = folder / "inspectors.csv"
    pool.write_text("district,inspector_id\n" + "".join(f"{d},X{d}-{i}\n" for d in districts for i in (1, 2)),
                    encoding="utf-8")
    out = folder / "plan.csv"
    assert _run(["plan", "--lake", str(small_lake), "--as-of", AS_OF.isoformat(), "--capacity", "4",
                 "--seed", "5", "--inspectors", str(pool), "--out", str(out), "--no-store"]) == 0
    plan = pl.read_csv(out, schema_overrides={"district": pl.String, "inspector": pl.String})
    scheduled = plan.filter(pl.col("inspector").is_not_null())
    assert scheduled.height > 0
    for district, inspector in scheduled.select("district", "inspector").iter_rows():
        assert inspector in {f"X{district}-1", f"X{district}-2"}  # from the file, of its own district
    meta = json.loads(meta_path(out).read_text(encoding="utf-8"))
    assert {(r["district"], r["inspector_id"]) for r in meta["inspectors"]} == {
        (d, f"X{d}-{i}") for d in districts for i in (1, 2)}


def test_an_inspectors_file_without_its_columns_exits_2_naming_them(
    home, small_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = home
    pool = folder / "inspectors.csv"
    pool.write_text("district,name\n420106,张三\n", encoding="utf-8")
    assert _run(["plan", "--lake", str(small_lake), "--as-of", AS_OF.isoformat(), "--capacity", "4",
                 "--inspectors", str(pool), "--out", str(folder / "p.csv"), "--no-store"]) == 2
    assert "missing inspector_id" in capsys.readouterr().err


def test_over_capacity_rows_are_red_in_the_excel_and_no_other_row_is(tmp_path: Path) -> None:
    grades = grades_frame(60, districts=("420106",), sectors=("retail",))
    failing = grades.sort("score", descending=True)["enterprise_id"].to_list()[10:15]
    result = plan_for(grades, 2, tables_of([inspection(e, date(2025, 5, 20), "fail") for e in failing]))
    assert result.plan.filter(pl.col("status") == STATUS_OVER).height == 3
    out = tmp_path / "plan.xlsx"
    write_plan_files(result, out)
    sheet = openpyxl.load_workbook(out)["420106 武昌区"]
    headers = [c.value for c in sheet[1]]
    status = headers.index(next(h for h in headers if "Status" in h or "状态" in h))
    reds, others = [], []
    for row in sheet.iter_rows(min_row=2):
        cell = row[status]
        (reds if cell.font.color is not None and cell.font.color.rgb == RED else others).append(cell.value)
    assert reds == [STATUS_LABELS[STATUS_OVER]] * 3
    assert others and STATUS_LABELS[STATUS_OVER] not in others
