"""Ingest is idempotent and atomic: re-ingesting changes nothing, fatal input and failures at any step
leave the lake as it was or whole, one ingest writes at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from riskengine.core.errors import FatalInputError
from riskengine.lake import ingest as ingest_module
from riskengine.lake import layout as lakes
from riskengine.lake.layout import scan_table
from tests.ingest_helpers import (
    E1,
    E2,
    enterprise,
    inspection,
    run,
    snapshot,
    source,
    uscc,
    write_csv,
)

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
