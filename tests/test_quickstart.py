"""`riskengine quickstart` runs the whole pipeline on a small generated city and leaves its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook

from riskengine.core.contract import GRADES


def test_quickstart_runs_every_step_and_writes_grades_plan_and_simulation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from riskengine.cli import main
    from riskengine.core.config import get_settings

    monkeypatch.chdir(tmp_path)
    work = tmp_path / "qs"
    # quickstart points RISKENGINE_HOME at its folder; monkeypatch restores it for the other tests.
    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        main(["quickstart", "--enterprises", "1000", "--dir", str(work), "--seed", "3"])
    get_settings.cache_clear()
    assert exit_.value.code == 0
    out = work / "outputs"
    grades = pl.read_parquet(out / "grades_2026-01-01.parquet")
    assert grades.height > 0 and set(grades["grade"].unique()) <= set(GRADES)
    assert grades["model_version"].is_not_null().all()
    excel = load_workbook(out / "grades_2026-01-01.xlsx", read_only=True)
    assert excel.worksheets[0].max_row == grades.height + 1  # the same grades, under one header row
    sheets = load_workbook(out / "plan_2026-01.xlsx", read_only=True).sheetnames
    assert len(sheets) >= 2  # a summary and at least one district
    # By default the plan has, in every district, what the policy asks for: nothing over capacity and
    # every enterprise at least 1% a year.
    meta = json.loads((out / "plan_2026-01.xlsx.meta.json").read_text(encoding="utf-8"))
    assert meta["shortfalls"] == {}
    drawn = [d for d in meta["districts"] if d["enterprises"] > d["mandatory"]]
    assert drawn and all(d["min_annual_probability"] >= 0.01 for d in drawn)
    simulation = json.loads((out / "simulation.json").read_text(encoding="utf-8"))
    # the three policies at one capacity (13 districts x the simulated monthly capacity x 12 months),
    # uniform all random, top-k none, the lift the ratio of the graded and uniform finding rates
    policies = {p["policy"]: p for p in simulation["policies"]}
    assert set(policies) == {"uniform", "graded", "top_k"}
    assert simulation["meta"]["seed"] == 3 and simulation["meta"]["year"] == 2025
    capacity = simulation["meta"]["capacity_per_month"]
    assert capacity > 0 and all(p["inspections"] == capacity * 12 for p in policies.values())
    assert policies["uniform"]["random_share"] == 1.0 and policies["top_k"]["random_share"] == 0.0
    assert policies["uniform"]["expected_findings_per_100"] > 0
    assert simulation["meta"]["graded_lift_vs_uniform"] == pytest.approx(
        policies["graded"]["expected_findings_per_100"] / policies["uniform"]["expected_findings_per_100"])
    assert {(c["policy"], c["grade"]) for c in simulation["coverage"]} >= {("graded", g) for g in "BCD"}
    assert (work / "riskengine.duckdb").is_file() and (work / "mlruns").is_dir()
    assert (out / "published" / "index.html").is_file()
    manifest = json.loads((out / "credit-exchange" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["records"] > 0 and manifest["batches"][0]["file"] == "batch-000001.jsonl"
    report = json.loads((out / "monitor_2025.json").read_text(encoding="utf-8"))
    assert [m["month"] for m in report["months"]] == [f"2025-{m:02d}" for m in range(1, 13)]
    assert sum(c["random_inspections"] for c in report["pooled"]["grades"].values()) > 0
    assert "data:image/png;base64," in (out / "monitor_2025.html").read_text(encoding="utf-8")
    raised = json.loads((out / "warnings_2026-01-01.json").read_text(encoding="utf-8"))
    printed = capsys.readouterr().out
    assert "quickstart finished" in printed
    assert f"{len(raised)} of {len(raised)} warnings arrived with a valid HMAC-SHA256 signature" in printed


def test_quickstart_refuses_a_city_too_small_to_model(tmp_path: Path) -> None:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["quickstart", "--enterprises", "50", "--dir", str(tmp_path / "qs")])
    assert exit_.value.code == 2
    assert not (tmp_path / "qs").exists()
