"""``riskengine cases …`` as CONTRACT section 5 specifies it: JSON, exit codes, the id on the last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskengine.core.config import get_settings
from riskengine.lake.layout import scan_table
from tests.case_helpers import E1, E3, build_lake


@pytest.fixture
def lake(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    monkeypatch.setenv("RISKENGINE_STORE_PATH", str(tmp_path / "store.duckdb"))
    get_settings.cache_clear()
    yield build_lake(tmp_path)
    get_settings.cache_clear()


def run(args: list[str], capsys) -> tuple[int, str, str]:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_open_prints_the_case_with_its_id_on_the_last_line(lake: Path, capsys) -> None:
    code, out, err = run(["cases", "open", "objection", E1, "--lake", str(lake), "--received-on",
                          "2025-09-29", "--grade", "--statement", "等级过高", "--officer", "王科长"], capsys)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "OBJ-2025-000001"
    code, out, _ = run(["cases", "show", "OBJ-2025-000001", "--format", "json", "--as-of", "2025-10-09"],
                       capsys)
    case = json.loads(out)
    assert {k: case[k] for k in ("case_id", "enterprise_id", "kind", "status", "received_on", "due_on",
                                 "overdue")} == {
        "case_id": "OBJ-2025-000001", "enterprise_id": E1, "kind": "objection", "status": "received",
        "received_on": "2025-09-29", "due_on": "2025-10-09", "overdue": False}
    assert [s["step"] for s in case["steps"]] == ["open"]


def test_a_step_out_of_order_exits_1_naming_the_status_and_changes_nothing(lake: Path, capsys) -> None:
    run(["cases", "open", "objection", E3, "--lake", str(lake), "--received-on", "2025-09-01",
         "--record", "list_entries:LST-3", "--statement", "列入依据有误"], capsys)
    code, out, err = run(["cases", "step", "OBJ-2025-000001", "uphold", "--lake", str(lake), "--reason", "ok",
                          "--on", "2025-09-02"], capsys)
    assert code == 1 and "is received" in err and err.count("\n") == 1
    _, out, _ = run(["cases", "show", "OBJ-2025-000001", "--format", "json"], capsys)
    assert json.loads(out)["status"] == "received" and len(json.loads(out)["steps"]) == 1
    assert scan_table(lake, "record_voids").collect().height == 0
    code, _, err = run(["cases", "step", "OBJ-2025-000001", "accept", "--lake", str(lake)], capsys)
    assert code == 2 and "--reason" in err  # no step without a reason


def test_uphold_writes_the_void_and_a_second_decision_exits_1(lake: Path, capsys) -> None:
    run(["cases", "open", "objection", E3, "--lake", str(lake), "--received-on", "2025-09-01",
         "--record", "list_entries:LST-3", "--statement", "列入依据有误"], capsys)
    for step, on in (("accept", "2025-09-02"), ("uphold", "2025-09-05")):
        code, _, err = run(["cases", "step", "OBJ-2025-000001", step, "--lake", str(lake), "--reason", "核实",
                            "--on", on, "--format", "json"], capsys)
        assert code == 0, err
    assert scan_table(lake, "record_voids").collect()["record_id"].to_list() == ["LST-3"]
    code, _, err = run(["cases", "step", "OBJ-2025-000001", "reject", "--lake", str(lake), "--reason", "x"],
                       capsys)
    assert code == 1 and "already upheld" in err


def test_list_shows_overdue_cases_as_json(lake: Path, capsys) -> None:
    for day in ("2025-09-01", "2025-09-29"):
        run(["cases", "open", "repair", E3, "--lake", str(lake), "--received-on", day,
             "--list-entry", "LST-3"], capsys)
    code, out, _ = run(["cases", "list", "--overdue", "--as-of", "2025-10-01", "--format", "json"], capsys)
    found = json.loads(out)
    assert code == 0 and [c["case_id"] for c in found] == ["REP-2025-000001"]
    assert found[0]["overdue"] is True and [s["step"] for s in found[0]["steps"]] == ["open"]
    code, out, _ = run(["cases", "overview", "--as-of", "2025-10-01", "--format", "json"], capsys)
    assert json.loads(out)["open"]["repair"] == {"received": 2, "accepted": 0}


def test_bad_usage_exits_2_with_one_line(lake: Path, capsys) -> None:
    code, _, err = run(["cases", "open", "objection", E1, "--lake", str(lake), "--received-on", "2025-09-01",
                        "--statement", "x"], capsys)
    assert code == 2 and "exactly one of --record" in err
    code, _, err = run(["cases", "open", "repair", E1, "--lake", str(lake), "--received-on", "2025-13-01",
                        "--penalty", "PEN-1"], capsys)
    assert code == 2 and "--received-on" in err
    code, _, err = run(["cases", "show", "OBJ-1999-000009"], capsys)
    assert code == 1 and "no case" in err
