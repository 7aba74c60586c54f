"""``plan --replay`` tells a changed plan (exit 1) and changed grades (exit 2) from an identical one."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from riskengine.core.config import get_settings
from riskengine.supervision.simulate import grades_from_truth, read_source_table, read_truth
from riskengine.workflows.planning import meta_path
from tests.test_planning import AS_OF, _run


@pytest.fixture()
def planned(small_city: Path, small_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    get_settings.cache_clear()
    grades = grades_from_truth(read_truth(small_city), read_source_table(small_city, "enterprises"), AS_OF)
    grades_file = tmp_path / "grades.parquet"
    grades.write_parquet(grades_file)
    out = tmp_path / "plan.xlsx"
    assert _run(["plan", "--lake", str(small_lake), "--as-of", "2025-06-01", "--capacity", "4",
                 "--seed", "9", "--grades", str(grades_file), "--out", str(out), "--no-store"]) == 0
    yield meta_path(out), grades_file
    get_settings.cache_clear()


def test_a_replay_whose_list_differs_from_the_recorded_digest_fails_with_exit_1(planned, capsys) -> None:
    meta_file, _ = planned
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["plan_digest"] = "0" * len(meta["plan_digest"])
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    assert _run(["plan", "--replay", str(meta_file)]) == 1
    err = capsys.readouterr().err
    assert "different list" in err and "identical" not in err


def test_a_replay_over_changed_grades_fails_with_exit_2(planned, capsys) -> None:
    meta_file, grades_file = planned
    grades = pl.read_parquet(grades_file)
    flipped = grades.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.when(pl.col("grade") == "D").then(pl.lit("A")).otherwise(pl.lit("D")))
        .otherwise(pl.col("grade")).alias("grade"))
    flipped.write_parquet(grades_file)
    assert _run(["plan", "--replay", str(meta_file)]) == 2
    assert "the grades changed since the plan was made" in capsys.readouterr().err
