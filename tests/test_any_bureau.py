"""Any bureau's data, no traceback (issue 11): a generated city with random subsets of its optional
tables and columns removed still goes train → promote → score → explain → plan, and a mapping file
turns an export into contract tables or names the key that is wrong."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import polars as pl
import pytest

from riskengine.core.contract import TABLES
from riskengine.core.errors import ConfigError
from riskengine.lake.mapping import apply_mapping

AS_OF = "2026-01-01"
OPTIONAL_TABLES = sorted(n for n, t in TABLES.items() if not t.required)
OPTIONAL_COLUMNS = {"enterprises": ["district", "sector", "established_on", "registered_capital",
                                    "legal_rep_id", "name", "industry_code"],
                    "inspections": ["inspector_id", "findings_minor", "findings_serious",
                                    "findings_critical"]}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from riskengine.synth import generate_city

    out = tmp_path_factory.mktemp("bureau") / "src"
    generate_city(out, n_enterprises=500, seed=11)
    return out


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out + captured.err


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_city_missing_random_tables_and_columns_runs_end_to_end(
    seed: int, city: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from riskengine.core.config import get_settings

    rng = random.Random(seed)
    src = tmp_path / "src"
    shutil.copytree(city, src, ignore=shutil.ignore_patterns("_truth"))
    dropped = rng.sample(OPTIONAL_TABLES, rng.randint(1, len(OPTIONAL_TABLES)))
    for table in dropped:
        for f in src.glob(f"{table}.*"):
            f.unlink()
    for table, columns in OPTIONAL_COLUMNS.items():
        path = src / f"{table}.csv"
        if path.is_file():
            frame = pl.read_csv(path, infer_schema=False)
            frame.drop(rng.sample(columns, rng.randint(1, len(columns)))).write_csv(path)
    if seed == 3:  # ids that are not USCCs
        for path in src.glob("*.csv"):
            frame = pl.read_csv(path, infer_schema=False)
            if "enterprise_id" in frame.columns:
                renamed = pl.format("R-{}", pl.col("enterprise_id").str.slice(8, 9))
                frame.with_columns(renamed.alias("enterprise_id")).write_csv(path)
    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    get_settings.cache_clear()
    lake = str(tmp_path / "lake")
    try:
        steps = [
            ["ingest", str(src), "--lake", lake, "--id-scheme", "any"],
            # Robustness, not modelling: the quickest training that still fits, calibrates and grades.
            ["train", "--lake", lake, "--as-of", AS_OF, "--snapshots", "6", "--test-snapshots", "1",
             "--no-compare-selection", "--no-select", "--no-compare-targets", "--max-rounds", "30"],
            ["promote"],
            ["score", "--lake", lake, "--as-of", AS_OF, "--out", str(tmp_path / "grades.parquet")],
        ]
        for args in steps:
            code, text = _cli(args, capsys)
            assert code == 0 and "Traceback" not in text, (args, dropped, text[-2000:])
        grades = pl.read_parquet(tmp_path / "grades.parquet")
        assert grades.height > 0 and set(grades["grade"]) <= {"A", "B", "C", "D"}
        for args in (["explain", grades["enterprise_id"][0], "--lake", lake, "--as-of", AS_OF],
                     ["plan", "--lake", lake, "--as-of", AS_OF, "--capacity", "20",
                      "--out", str(tmp_path / "plan.csv")]):
            code, text = _cli(args, capsys)
            assert code == 0 and "Traceback" not in text, (args, dropped, text[-2000:])
    finally:
        get_settings.cache_clear()


def _export(tmp_path: Path) -> Path:
    src = tmp_path / "export"
    src.mkdir()
    pl.DataFrame({"shop": ["s1", "s1", "s2"], "when": ["2024-01-05", "2024-01-09", "2024-02-01"],
                  "***": ["1", "0", "0"], "**": ["0", "2", "0"],
                  "result": ["Fail", "Pass w/ Conditions", "Pass"]}).write_csv(src / "visits.csv")
    return src


def test_a_mapping_renames_maps_values_derives_and_fills(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text("""
[tables.inspections]
file = "visits.csv"
columns.enterprise_id = "shop"
columns.inspected_on = "when"
columns.findings_critical = "***"
columns.findings_serious = "**"
row_id = { inspection_id = "V" }
outcome = { rules = [["findings_critical", "fail"], ["findings_serious", "conditional"]], otherwise = "pass" }
kind = { follow_up_within_days = 7, otherwise = "random" }
[tables.enterprises]
from_table = "inspections"
constants = { status = "active" }
""", encoding="utf-8")
    apply_mapping(_export(tmp_path), mapping, tmp_path / "out")
    insp = pl.read_csv(tmp_path / "out" / "inspections.csv", infer_schema=False)
    assert insp["inspection_id"].to_list() == ["V1", "V2", "V3"]
    assert insp["outcome"].to_list() == ["fail", "conditional", "pass"]
    assert insp["kind"].to_list() == ["random", "follow_up", "random"]
    ent = pl.read_csv(tmp_path / "out" / "enterprises.csv", infer_schema=False)
    assert ent.to_dicts() == [{"enterprise_id": "s1", "status": "active"},
                              {"enterprise_id": "s2", "status": "active"}]


def test_a_mapping_maps_source_values_to_contract_values(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text("""
[tables.inspections]
file = "visits.csv"
columns = { enterprise_id = "shop", inspected_on = "when", outcome = "result" }
values.outcome = { "Fail" = "fail", "Pass w/ Conditions" = "conditional", "Pass" = "pass" }
""", encoding="utf-8")
    apply_mapping(_export(tmp_path), mapping, tmp_path / "out")
    outcomes = pl.read_csv(tmp_path / "out" / "inspections.csv")["outcome"].to_list()
    assert outcomes == ["fail", "conditional", "pass"]


@pytest.mark.parametrize(("body", "key"), [
    ('[tables.inspections]\nfile = "visits.csv"\ncolumns = { inspected_on = "day" }',
     "tables.inspections.columns.inspected_on"),
    ('[tables.inspections]\nfile = "visits.csv"\ncolumns = { visited = "when" }',
     "tables.inspections.columns.visited"),
    ('[tables.inspectionz]\nfile = "visits.csv"', "tables.inspectionz"),
    ('[tables.inspections]\nfile = "nope.csv"', "tables.inspections.file"),
    ('[tables.inspections]\nfile = "visits.csv"\ncolour = 1', "tables.inspections.colour"),
])
def test_a_mapping_mistake_names_its_key(tmp_path: Path, body: str, key: str) -> None:
    mapping = tmp_path / "bad.toml"
    mapping.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"bad.toml: {key}"):
        apply_mapping(_export(tmp_path), mapping, tmp_path / "out")


def test_the_shipped_boston_mapping_ingests_a_boston_shaped_export_and_quarantines_its_bulk_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import date, timedelta

    from riskengine.lake.layout import load_tables, scan_quarantine

    # Boston's columns: an unnamed row number that repeats, date, restaurant_id, *, **, ***.
    lines = [",date,restaurant_id,*,**,***"]
    first = date(2013, 1, 7)
    for day in range(40):  # five visits a day: restaurant k every eight days, so some re-visits
        for k in range(5):
            shop = f"R{(day * 5 + k) % 25:07d}"
            lines.append(f"7,{first + timedelta(days=day)},{shop},{k},{k % 2},{1 if k == 4 else 0}")
    lines += [f"7,2013-12-30,R{k % 25:07d},0,0,0" for k in range(250)]  # a bulk entry day
    src = tmp_path / "boston"
    src.mkdir()
    (src / "AllViolations.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = Path(__file__).parents[1] / "benchmarks" / "mappings" / "boston.toml"
    lake = tmp_path / "lake"
    code, out = _cli(["ingest", str(src), "--mapping", str(mapping), "--lake", str(lake),
                      "--id-scheme", "any", "--ingest-day", "2015-06-30"], capsys)
    assert code == 0, out
    assert "250 rows quarantined" in out
    entries = scan_quarantine(lake).collect()
    assert set(entries["rule"]) == {"bulk_day"} and entries.height == 250
    assert entries["reason"][0].startswith("250 inspections on 2013-12-30 against a median of 5 a day")
    insp = load_tables(lake)["inspections"].collect()
    assert insp.height == 200 and insp["inspected_on"].max() < date(2013, 12, 30)
    assert insp["inspection_id"].str.starts_with("BOS-").all() and insp["inspection_id"].n_unique() == 200
    by_outcome = dict(insp.group_by("outcome").len().iter_rows())
    assert by_outcome == {"fail": 40, "conditional": 80, "pass": 80}  # *** fails, ** conditional
    assert set(insp["kind"]) == {"random", "follow_up"}  # a re-visit within 30 days is a follow-up
    assert load_tables(lake)["enterprises"].collect().height == 25
