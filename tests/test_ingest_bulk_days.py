"""Bulk-entry days (rule ``bulk_day``): a day holding at least BULK_DAY_MIN_ROWS inspections and more
than BULK_DAY_FACTOR times the source's median day is quarantined whole, with the count, the day and
the median in the reason; ``keep_bulk_days`` accepts it; a busy day under either limit is kept."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from riskengine.cli import app
from riskengine.lake.layout import load_tables
from riskengine.lake.validate import BULK_DAY_FACTOR, BULK_DAY_MIN_ROWS
from tests.ingest_helpers import DAY, E1, E2, inspection, quarantined, run, source

FIRST = date(2024, 1, 1)


def _rows(per_day: list[int], start: int = 0) -> list[dict[str, str]]:
    """``per_day[k]`` inspections on day k from FIRST, alternating the two enterprises."""
    rows, n = [], start
    for k, count in enumerate(per_day):
        for _ in range(count):
            n += 1
            rows.append(inspection(f"I{n}", E1 if n % 2 else E2,
                                   inspected_on=(FIRST + timedelta(days=k)).isoformat()))
    return rows


def test_a_bulk_day_is_quarantined_whole_and_named(tmp_path: Path) -> None:
    per_day = [10] * 30 + [BULK_DAY_MIN_ROWS + 50]  # median 10, the last day 25x it
    bulk_day = (FIRST + timedelta(days=30)).isoformat()
    report = run(source(tmp_path, inspections=_rows(per_day)), tmp_path / "lake")
    counts = report.tables["inspections"]
    assert counts == {"read": 550, "accepted": 300, "quarantined": 250, "duplicates": 0}
    entries = quarantined(tmp_path / "lake")
    assert {e["rule"] for e in entries} == {"bulk_day"}
    assert {e["value"] for e in entries} == {bulk_day}
    assert entries[0]["column"] == "inspected_on"
    assert entries[0]["reason"].startswith(f"250 inspections on {bulk_day} against a median of 10 a day")
    stored = load_tables(tmp_path / "lake")["inspections"].collect()
    assert stored.height == 300
    assert str(stored["inspected_on"].max()) < bulk_day


def test_keep_bulk_days_accepts_them(tmp_path: Path) -> None:
    per_day = [10] * 30 + [BULK_DAY_MIN_ROWS + 50]
    report = run(source(tmp_path, inspections=_rows(per_day)), tmp_path / "lake", keep_bulk_days=True)
    assert report.tables["inspections"]["accepted"] == 550
    assert quarantined(tmp_path / "lake") == []


@pytest.mark.parametrize("per_day", [
    # At the factor exactly: BULK_DAY_FACTOR x a median of 10 is not more than it.
    [10] * 30 + [BULK_DAY_FACTOR * 10],
    # Far above the median but under the minimum count: a small source's busy day.
    [2] * 30 + [BULK_DAY_MIN_ROWS - 1],
])
def test_a_busy_day_under_either_limit_is_kept(tmp_path: Path, per_day: list[int]) -> None:
    report = run(source(tmp_path, inspections=_rows(per_day)), tmp_path / "lake")
    assert report.tables["inspections"]["quarantined"] == 0
    assert report.tables["inspections"]["accepted"] == sum(per_day)


def test_one_more_row_over_the_factor_is_a_bulk_day(tmp_path: Path) -> None:
    per_day = [10] * 30 + [BULK_DAY_FACTOR * 10 + 1]
    report = run(source(tmp_path, inspections=_rows(per_day)), tmp_path / "lake")
    assert report.tables["inspections"]["quarantined"] == BULK_DAY_FACTOR * 10 + 1


def test_the_cli_flag_keeps_them(tmp_path: Path) -> None:
    per_day = [10] * 30 + [BULK_DAY_MIN_ROWS + 50]
    src = source(tmp_path, inspections=_rows(per_day))
    args = ["ingest", str(src), "--ingest-day", DAY.isoformat()]
    default = CliRunner().invoke(app, [*args, "--lake", str(tmp_path / "a")])
    kept = CliRunner().invoke(app, [*args, "--lake", str(tmp_path / "b"), "--keep-bulk-days"])
    assert default.exit_code == 0 and kept.exit_code == 0, default.output + kept.output
    heights = [load_tables(tmp_path / x)["inspections"].select(pl.len()).collect().item() for x in "ab"]
    assert heights == [300, 550]

