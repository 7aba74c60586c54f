"""Capacity values and files (riskengine/supervision/capacity.py): what counts as a number of
inspections, how one number or a mapping spreads over districts, and every rule of a capacity file,
each refusal naming its file, row, district and column."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from riskengine.core.errors import UsageError
from riskengine.supervision.capacity import capacity_for_policy, read_capacity, resolve_capacity

DISTRICTS = ["420102", "420106"]


@pytest.mark.parametrize(("value", "count"), [
    (0, 0), (7, 7), (7.0, 7), (0.0, 0), ("12", 12), (" 12 ", 12), ("0", 0),
])
def test_a_non_negative_whole_number_in_any_spelling_is_a_capacity(value: object, count: int) -> None:
    assert resolve_capacity(value, DISTRICTS) == ({"420102": count, "420106": count}, [])  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, -1.0, 2.5, True, False, "-3", "3.0", "", "lots", None, [3]])
def test_anything_else_is_refused_naming_the_source_and_value(value: object) -> None:
    with pytest.raises(UsageError, match=r"^cap\.csv: capacity must be a non-negative integer; got "):
        resolve_capacity(value, DISTRICTS, source="cap.csv")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^cap\.csv: district '420106': capacity must be a non-negative"):
        resolve_capacity({"420102": 1, "420106": value}, DISTRICTS, source="cap.csv")


def test_a_mapping_names_districts_and_an_unnamed_one_gets_zero_with_a_warning() -> None:
    assert resolve_capacity({"420102": 3, "420106": "4"}, DISTRICTS) == ({"420102": 3, "420106": 4}, [])
    counts, warnings = resolve_capacity({"420106": 4}, DISTRICTS, source="cap.toml")
    assert counts == {"420102": 0, "420106": 4}
    assert warnings == ["cap.toml: no capacity for district(s) 420102; planning 0 inspections there "
                        "(every mandatory item listed as over capacity)"]
    assert resolve_capacity({}, DISTRICTS)[0] == {"420102": 0, "420106": 0}


def test_a_mapping_naming_a_district_without_graded_enterprises_is_refused() -> None:
    with pytest.raises(UsageError, match=r"district '420111' is not a district of the graded enterprises "
                                         r"\(known: 420102, 420106\)"):
        resolve_capacity({"420106": 1, "420111": 2}, DISTRICTS)


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_capacity_file_is_read_with_bom_and_spaces(tmp_path: Path) -> None:
    path = _file(tmp_path, "cap.csv", "\ufeff district , capacity \n420106, 40\n420102,0\n")
    assert read_capacity(path) == {"420106": 40, "420102": 0}


@pytest.mark.parametrize(("text", "message"), [
    ("district,inspectors\n420106,4\n", "header must have columns 'district' and 'capacity'; got "
                                        "['district', 'inspectors']"),
    ("capacity\n4\n", "header must have columns 'district' and 'capacity'; got ['capacity']"),
    ("district,capacity\n420106,4\n,5\n", "row 3, column district: empty"),
    ("district,capacity\n420106,4\n420106,5\n", "row 3, column district: '420106' listed twice"),
    ("district,capacity\n420106,-4\n", "row 2 (district 420106), column capacity: must be a non-negative "
                                       "integer; got '-4'"),
    ("district,capacity\n420106,\n", "row 2 (district 420106), column capacity: must be a non-negative "
                                     "integer; got ''"),
])
def test_a_bad_csv_row_is_named_by_file_row_district_and_column(tmp_path: Path, text: str,
                                                                 message: str) -> None:
    path = _file(tmp_path, "cap.csv", text)
    with pytest.raises(UsageError) as refused:
        read_capacity(path)
    assert str(refused.value) == f"{path}: {message}"


def test_a_toml_capacity_file_at_top_level_or_under_capacity(tmp_path: Path) -> None:
    assert read_capacity(_file(tmp_path, "a.toml", '"420106" = 40\n"420102" = 3\n')) == {
        "420106": 40, "420102": 3}
    assert read_capacity(_file(tmp_path, "b.TOML", '[capacity]\n"420106" = 4\n')) == {"420106": 4}


@pytest.mark.parametrize(("text", "message"), [
    ("420106 = = 4\n", "not valid TOML"),
    ('capacity = 4\n', "expected a table of district = inspections"),
    ('[capacity."420106"]\nweekday = 4\n', "entry '420106' must be a number of inspections, not a table"),
])
def test_a_bad_toml_capacity_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, "cap.toml", text)
    with pytest.raises(UsageError) as refused:
        read_capacity(path)
    assert str(refused.value).startswith(f"{path}: {message}")


def test_a_missing_file_or_another_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="capacity file not found"):
        read_capacity(tmp_path / "none.csv")
    with pytest.raises(UsageError, match=r"capacity file must be \.csv or \.toml"):
        read_capacity(_file(tmp_path, "cap.txt", "district,capacity\n420106,4\n"))
    with pytest.raises(UsageError, match="capacity file not found"):
        read_capacity(tmp_path)  # a folder is not a file


def test_messages_name_the_capacity_option_by_default_and_every_missing_district() -> None:
    with pytest.raises(UsageError, match=r"^capacity: capacity must be a non-negative integer; got 'x'$"):
        resolve_capacity("x", DISTRICTS)
    _, warnings = resolve_capacity({"420106": 1}, [*DISTRICTS, "420111"])
    assert warnings[0].startswith("capacity: no capacity for district(s) 420102, 420111; planning 0")


def _policy_population(n: int, ratio: float, district: str = "420106") -> pl.DataFrame:
    return pl.DataFrame({"enterprise_id": [f"{district}-{i}" for i in range(n)], "district": [district] * n,
                         "ratio": [ratio] * n})


def test_policy_capacity_without_the_floor_is_the_ratios_over_twelve_rounded_up() -> None:
    # ratio 0.3 is far above the 1 %-a-year floor: the draw is exactly sum(ratio) / 12, rounded up
    none = pl.DataFrame({"enterprise_id": []}, schema={"enterprise_id": pl.String})
    assert capacity_for_policy(_policy_population(120, 0.3), none) == {"420106": 3}  # 3.0, not 4
    assert capacity_for_policy(_policy_population(130, 0.3), none) == {"420106": 4}  # 3.25


def test_policy_capacity_counts_an_enterprise_listed_twice_as_mandatory_once() -> None:
    population = _policy_population(120, 0.3)
    mandatory = pl.DataFrame({"enterprise_id": ["420106-0", "420106-0", "420106-1"],
                              "why": ["complaint", "follow-up", "complaint"]})
    # two mandatory visits, and the other 118 draw ceil(118 x 0.025) = 3
    assert capacity_for_policy(population, mandatory) == {"420106": 5}
