"""``riskengine features`` end to end on the small generated city's lake."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from features import FEATURES
from riskengine.cli import main
from riskengine.lake.layout import scan_table


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


def test_features_command_writes_one_row_per_existing_enterprise_and_as_of(small_lake: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture):
    out = tmp_path / "features.parquet"
    code = run(["features", "--lake", str(small_lake), "--as-of", "2023-01-01", "--as-of", "2025-07-01",
                "--out", str(out)])
    assert code == 0
    frame = pl.read_parquet(out)
    established = scan_table(small_lake, "enterprises").select("established_on").collect()["established_on"]
    for d in (date(2023, 1, 1), date(2025, 7, 1)):
        assert frame.filter(pl.col("as_of") == d).height == (established < d).sum()
    assert frame.columns == ["enterprise_id", "as_of", *FEATURES]
    assert frame.select(pl.struct("enterprise_id", "as_of").is_duplicated().any()).item() is False
    assert f"{frame.height:,} rows x {frame.width} columns" in capsys.readouterr().err


def test_the_generated_city_gives_the_features_real_values(small_lake: Path, tmp_path: Path):
    out = tmp_path / "f.parquet"
    assert run(["features", "--lake", str(small_lake), "--as-of", "2025-01-01", "--out", str(out)]) == 0
    frame = pl.read_parquet(out)
    for name in ("inspections__count_1095d", "penalties__count_1095d", "complaints__count_365d",
                 "licenses__valid", "severity__index"):
        assert frame[name].sum() > 0, name
    assert 0 < frame["inspections__never_inspected"].sum() < frame.height


def test_an_as_of_before_every_enterprise_gives_no_rows_and_says_so(small_lake: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture):
    out = tmp_path / "f.parquet"
    assert run(["features", "--lake", str(small_lake), "--as-of", "1990-01-01", "--as-of", "2025-01-01",
                "--out", str(out)]) == 0
    assert set(pl.read_parquet(out)["as_of"].to_list()) == {date(2025, 1, 1)}
    err = capsys.readouterr().err
    assert "(2 as_of dates)" in err
    assert "no rows as of 1990-01-01: no enterprise of the lake was established before it" in err


def test_features_command_writes_csv_when_the_name_ends_in_csv(small_lake: Path, tmp_path: Path):
    out = tmp_path / "features.csv"
    assert run(["features", "--lake", str(small_lake), "--as-of", "2024-06-01", "--out", str(out)]) == 0
    assert pl.read_csv(out).columns[:3] == ["enterprise_id", "as_of", next(iter(FEATURES))]


@pytest.mark.parametrize("bad", ["2024-13-01", "01/06/2024", ""])
def test_a_malformed_as_of_date_is_refused_with_exit_status_2(bad: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture):
    out = tmp_path / "f.parquet"
    assert run(["features", "--lake", str(tmp_path), "--as-of", bad, "--out", str(out)]) == 2
    assert f"--as-of must be a date YYYY-MM-DD; got {bad!r}" in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_that_is_not_a_lake_is_refused_with_exit_status_2(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture):
    assert run(["features", "--lake", str(tmp_path), "--as-of", "2024-01-01", "--out",
                str(tmp_path / "f.parquet")]) == 2
    assert "not a lake" in capsys.readouterr().err


def _same_up_to_float_rounding(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Equal frames, floats allowed to differ by summation order (1e-12 relative)."""
    from polars.testing import assert_frame_equal

    try:
        assert_frame_equal(a, b, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    except AssertionError:
        return False
    return True


def test_both_polars_engines_give_the_same_features(small_lake: Path, monkeypatch: pytest.MonkeyPatch):
    """compute_features picks the in-memory engine for small inputs and the streaming one for large:
    the choice must never change a value (floats may differ in the last bits, as the engines add up
    in different orders)."""
    import features.build as build
    from features import build_features, compute_features
    from riskengine.lake.layout import load_tables

    dates = [date(2024, 7, 1), date(2025, 1, 1)]
    small = compute_features(load_tables(small_lake), dates)
    monkeypatch.setattr(build, "IN_MEMORY_BELOW", 0)
    large = compute_features(load_tables(small_lake), dates)
    assert small.height > 0
    assert _same_up_to_float_rounding(small, large)
    streamed = build_features(load_tables(small_lake), dates).collect(engine="streaming")
    assert _same_up_to_float_rounding(small, streamed)
    exact = [c for c, t in small.schema.items() if not t.is_float()]
    assert small.select(exact).equals(large.select(exact))
    # The comparison itself can fail: a changed value is noticed.
    assert not _same_up_to_float_rounding(small, small.with_columns(pl.col("severity__index") * (1 + 1e-9)))
