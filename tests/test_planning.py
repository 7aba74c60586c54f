"""The monthly inspection plan: mandatory items, the seeded stratified draw, inspectors, outputs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from riskengine.core.contract import STATUS_OVER, STATUS_SCHEDULED, TABLES
from riskengine.core.errors import UsageError
from riskengine.supervision.capacity import read_capacity, resolve_capacity
from riskengine.supervision.draw import inclusion_probabilities, stratified_draw
from riskengine.supervision.inspectors import assign_inspectors
from riskengine.supervision.plan import make_plan
from riskengine.supervision.policy import load_policy
from riskengine.workflows.planning import meta_path, write_plan_files

AS_OF = date(2025, 6, 1)
POLICY = load_policy(None)


def grades_frame(n: int = 400, districts: tuple[str, ...] = ("420106", "420102"), seed: int = 0,
                 sectors: tuple[str, ...] = ("retail", "wire_cable")) -> pl.DataFrame:
    """A grades frame of ``n`` enterprises spread over districts, sectors and grades."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "enterprise_id": [f"E{i:05d}" for i in range(n)],
        "as_of": [AS_OF] * n,
        "name": [f"企业{i}" for i in range(n)],
        "district": [districts[i % len(districts)] for i in range(n)],
        "sector": rng.choice(list(sectors), n).tolist(),
        "grade": rng.choice(list("ABCD"), n, p=[0.5, 0.3, 0.15, 0.05]).tolist(),
        "score": rng.permutation(n).astype(np.int64).tolist(),
        "reasons": [[{"code": "sampling__fail_365d", "contribution": 0.4, "text_zh": "近365天抽检不合格2次",
                      "text_en": "2 failed sampling tests in the last 365 days"}]] * n,
    })


def tables_of(inspections: list[dict] | None = None, complaints: list[dict] | None = None,
              enterprises: pl.DataFrame | None = None) -> dict[str, pl.LazyFrame]:
    """Lake-like tables with the contract schema from a few rows."""
    out = {}
    for name, rows in (("inspections", inspections), ("complaints", complaints)):
        schema = TABLES[name].schema
        out[name] = pl.DataFrame([{c: r.get(c) for c in schema} for r in rows or []], schema=schema).lazy()
    if enterprises is not None:
        out["enterprises"] = enterprises.lazy()
    return out


def inspection(eid: str, day: date, outcome: str = "pass", inspector: str | None = "P1", n: int = 0,
               recorded: date | None = None) -> dict:
    return {"inspection_id": f"I-{eid}-{day}-{n}", "enterprise_id": eid, "inspected_on": day,
            "kind": "random", "inspector_id": inspector, "outcome": outcome, "recorded_on": recorded}


def pool(district: str, *names: str) -> list[dict]:
    """Old inspections that put ``names`` into a district's pool (enterprise E0000x of that district)."""
    enterprise = "E00000" if district == "420106" else "E00001"
    return [inspection(enterprise, date(2025, 1, 10 + i), inspector=p, n=i) for i, p in enumerate(names)]


def plan_for(grades: pl.DataFrame, capacity, tables=None, seed: int = 1, **kw):
    return make_plan(grades, tables or tables_of(), AS_OF, capacity, seed, POLICY, **kw)


# --- the draw --------------------------------------------------------------------------------


def test_random_draw_honours_policy_ratios_per_stratum_statistically():
    grades = grades_frame(3000, districts=("420106",), seed=3)
    frame = POLICY.assign(grades)
    capacity = 60
    design = inclusion_probabilities(frame, capacity)
    hits = {e: 0 for e in frame["enterprise_id"]}
    rng = np.random.default_rng(2024)
    draws = 300
    for _ in range(draws):
        for e in stratified_draw(frame, capacity, rng)["enterprise_id"]:
            hits[e] += 1
    observed = design.with_columns(pl.col("enterprise_id").replace_strict(hits).alias("hits"))
    per_stratum = observed.group_by("grade", "sector").agg(
        pl.col("hits").sum() / (pl.len() * draws), pl.col("inclusion_probability").first(),
        pl.col("ratio").first(), pl.len())
    for row in per_stratum.iter_rows(named=True):
        expected = row["inclusion_probability"]
        se = (expected * (1 - expected) / (row["len"] * draws)) ** 0.5
        assert abs(row["hits"] - expected) < 5 * se + 1e-9, row
    # relative rates follow the policy: a D enterprise is 30x as likely as an A one (ordinary sector)
    rates = {(r["grade"], r["sector"]): r["inclusion_probability"] for r in per_stratum.iter_rows(named=True)}
    assert rates[("D", "retail")] / rates[("A", "retail")] == pytest.approx(30.0)
    assert rates[("D", "wire_cable")] / rates[("D", "retail")] == pytest.approx(0.5 / 0.3)


def test_draw_fills_exactly_the_remaining_capacity():
    frame = POLICY.assign(grades_frame(1000, districts=("420106",)))
    rng = np.random.default_rng(0)
    assert {stratified_draw(frame, 37, rng).height for _ in range(20)} == {37}


def test_every_enterprise_keeps_a_positive_chance_even_at_tiny_capacity():
    design = inclusion_probabilities(POLICY.assign(grades_frame(5000, districts=("420106",))), 1)
    assert design["inclusion_probability"].min() > 0


def test_draw_is_uniform_within_a_stratum():
    frame = POLICY.assign(grades_frame(600, districts=("420106",), sectors=("retail",)))
    design = inclusion_probabilities(frame, 20)
    distinct = design.group_by("grade").agg(pl.col("inclusion_probability").n_unique())
    assert distinct["inclusion_probability"].max() == 1


# --- whole plans -----------------------------------------------------------------------------


def test_capacity_is_never_exceeded_in_any_district():
    grades = grades_frame(800)
    for capacity in (0, 1, 7, 50, {"420106": 3, "420102": 900}):
        plan = plan_for(grades, capacity).plan
        for district, part in plan.filter(pl.col("status") == STATUS_SCHEDULED).group_by("district"):
            cap = capacity if isinstance(capacity, int) else capacity[district[0]]
            assert part.height <= cap


def test_same_seed_gives_the_same_plan_and_another_seed_another():
    grades = grades_frame(800)
    first = plan_for(grades, 20, seed=5).plan
    assert first.equals(plan_for(grades, 20, seed=5).plan)
    assert not first.equals(plan_for(grades, 20, seed=6).plan)


def test_mandatory_items_come_before_random_draws():
    grades = grades_frame(200, districts=("420106",), sectors=("retail",))  # no minimum frequencies
    ids = grades["enterprise_id"].to_list()
    complaint = {"complaint_id": "C1", "enterprise_id": ids[4], "received_on": date(2025, 5, 2)}
    tables = tables_of(inspections=[inspection(ids[3], date(2025, 5, 20), "fail")], complaints=[complaint])
    plan = plan_for(grades, 10, tables).plan.sort("rank")
    strata = plan["stratum"].to_list()
    assert strata[:2] == ["mandatory", "mandatory"] and set(strata[2:]) == {"random"}
    assert set(plan.filter(pl.col("stratum") == "mandatory")["enterprise_id"]) == {ids[3], ids[4]}


def test_follow_up_of_a_failure_is_mandatory_with_its_reason():
    grades = grades_frame(50, districts=("420106",))
    eid = grades["enterprise_id"][7]
    plan = plan_for(grades, 5, tables_of([inspection(eid, date(2025, 5, 20), "conditional")])).plan
    row = plan.filter(pl.col("enterprise_id") == eid).row(0, named=True)
    assert row["stratum"] == "mandatory"
    assert row["why"].startswith("上期检查不合格复查（2025-05-20）")
    assert "follow-up of a failed inspection" in row["why"]
    assert row["due_on"] == date(2025, 6, 15)


def test_failure_already_followed_up_is_not_mandatory_again():
    grades = grades_frame(50, districts=("420106",))
    eid = grades["enterprise_id"][7]
    tables = tables_of([inspection(eid, date(2025, 5, 10), "fail", n=0),
                        inspection(eid, date(2025, 5, 25), "pass", n=1)])
    plan = plan_for(grades, 5, tables).plan
    assert eid not in plan.filter(pl.col("stratum") == "mandatory")["enterprise_id"].to_list()


def test_failure_recorded_on_or_after_as_of_is_not_known_yet():
    grades = grades_frame(50, districts=("420106",))
    eid = grades["enterprise_id"][7]
    late = inspection(eid, date(2025, 5, 20), "fail", recorded=AS_OF)
    plan = plan_for(grades, 5, tables_of([late])).plan
    assert eid not in plan.filter(pl.col("stratum") == "mandatory")["enterprise_id"].to_list()


def test_unsubstantiated_or_inspected_complaints_are_not_leads():
    grades = grades_frame(50, districts=("420106",))
    a, b, c = grades["enterprise_id"][:3]
    complaints = [
        {"complaint_id": "C1", "enterprise_id": a, "received_on": date(2025, 5, 3), "substantiated": False},
        {"complaint_id": "C2", "enterprise_id": b, "received_on": date(2025, 5, 3), "substantiated": True},
        {"complaint_id": "C3", "enterprise_id": c, "received_on": date(2025, 5, 3)},
    ]
    plan = plan_for(grades, 5, tables_of([inspection(b, date(2025, 5, 9))], complaints)).plan
    assert c in plan.filter(pl.col("stratum") == "mandatory")["enterprise_id"].to_list()
    assert not {a, b} & set(plan.filter(pl.col("stratum") == "mandatory")["enterprise_id"].to_list())


def test_minimum_frequency_falls_due_when_the_last_12_months_have_too_few_inspections():
    grades = grades_frame(40, districts=("420106",)).with_columns(
        pl.lit("wire_cable").alias("sector"), pl.lit("A").alias("grade"))
    due, fresh = grades["enterprise_id"][:2]
    grades = grades.with_columns(pl.when(pl.col("enterprise_id").is_in([due, fresh])).then(pl.lit("D"))
                                 .otherwise(pl.col("grade")).alias("grade"))
    # inspected 2024-06-15: outside the 12 months ending 2025-06-30 -> due; 2024-07-15 inside -> not due
    tables = tables_of([inspection(due, date(2024, 6, 15)), inspection(fresh, date(2024, 7, 15))])
    mandatory = plan_for(grades, 5, tables).plan.filter(pl.col("stratum") == "mandatory")
    assert mandatory["enterprise_id"].to_list() == [due]
    assert "minimum frequency due (0 in 12 months, at least 1 required)" in mandatory["why"][0]


def test_shortfall_is_reported_ranked_by_score_and_nothing_dropped():
    grades = grades_frame(60, districts=("420106",), sectors=("retail",))
    failing = grades.sort("score", descending=True)["enterprise_id"].to_list()[10:15]
    tables = tables_of([inspection(e, date(2025, 5, 20), "fail") for e in failing])
    result = plan_for(grades, 2, tables)
    mandatory = result.plan.filter(pl.col("stratum") == "mandatory").sort("rank")
    assert mandatory.height == 5
    assert mandatory["status"].to_list() == [STATUS_SCHEDULED] * 2 + [STATUS_OVER] * 3
    assert mandatory["score"].to_list() == sorted(mandatory["score"].to_list(), reverse=True)
    assert result.meta["shortfalls"] == {"420106": 3}
    assert any("over capacity" in w for w in result.warnings)
    assert mandatory.filter(pl.col("status") == STATUS_OVER)["inspector"].null_count() == 3


def test_inactive_enterprises_are_not_planned():
    grades = grades_frame(30, districts=("420106",))
    enterprises = grades.select("enterprise_id", "name", "district", "sector").with_columns(
        pl.when(pl.int_range(pl.len()) < 20).then(pl.lit("revoked")).otherwise(pl.lit("active"))
        .alias("status"))
    plan = plan_for(grades, 30, tables_of(enterprises=enterprises)).plan
    assert plan.height > 0  # an empty plan would hold no inactive enterprise either
    assert set(plan["enterprise_id"]) <= set(grades["enterprise_id"][20:])
    all_active = enterprises.with_columns(pl.lit("active").alias("status"))
    everyone = plan_for(grades, 30, tables_of(enterprises=all_active)).plan
    assert set(everyone["enterprise_id"]) - set(grades["enterprise_id"][20:])  # the same, all active


# --- inspectors ------------------------------------------------------------------------------


def test_inspector_is_never_the_last_one_and_comes_from_the_district_pool():
    grades = grades_frame(300)
    ids = grades.filter(pl.col("district") == "420106")["enterprise_id"].to_list()
    history = pool("420106", "P1", "P2", "P3") + pool("420102", "Q1", "Q2")
    history += [inspection(e, date(2025, 3, 1), inspector="P2", n=9) for e in ids[:60]]
    plan = plan_for(grades, 40, tables_of(history)).plan.filter(pl.col("status") == STATUS_SCHEDULED)
    wuchang = plan.filter(pl.col("district") == "420106")
    assert set(wuchang["inspector"]) <= {"P1", "P2", "P3"}
    assert set(plan.filter(pl.col("district") == "420102")["inspector"]) <= {"Q1", "Q2"}
    last_p2 = wuchang.filter(pl.col("enterprise_id").is_in(ids[:60]))
    assert last_p2.height and "P2" not in last_p2["inspector"].to_list()


def test_inspectors_share_the_load_evenly():
    visits = [f"E{i}" for i in range(31)]
    chosen = assign_inspectors(visits, ["P1", "P2", "P3", "P4"], {}, np.random.default_rng(0))
    counts = pl.Series(chosen).value_counts()["count"]
    assert counts.max() - counts.min() <= 1


def test_given_inspector_list_replaces_the_lake_pool():
    grades = grades_frame(100, districts=("420106",))
    given = pl.DataFrame({"district": ["420106", "420106"], "inspector_id": ["X1", "X2"]})
    plan = plan_for(grades, 10, tables_of(pool("420106", "P1")), inspectors=given).plan
    assert set(plan["inspector"].drop_nulls()) == {"X1", "X2"}


# --- capacity --------------------------------------------------------------------------------


def test_capacity_for_an_unknown_district_is_an_error_naming_it():
    with pytest.raises(UsageError, match="district '420199' is not a district"):
        resolve_capacity({"420199": 5}, ["420106"], "cap.csv")


def test_capacity_file_with_a_bad_value_names_row_district_and_column(tmp_path: Path):
    path = tmp_path / "cap.csv"
    path.write_text("district,capacity\n420106,10\n420102,2.5\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"cap.csv: row 3 \(district 420102\), column capacity: must be a "
                                         r"non-negative integer; got '2.5'"):
        read_capacity(path)
    path.write_text("district,capacity\n420106,-1\n", encoding="utf-8")
    with pytest.raises(UsageError, match="row 2 .* got '-1'"):
        read_capacity(path)


def test_capacity_toml_is_read_and_validated(tmp_path: Path):
    path = tmp_path / "cap.toml"
    path.write_text('[capacity]\n"420106" = 12\n"420102" = 3\n', encoding="utf-8")
    caps, warnings = resolve_capacity(read_capacity(path), ["420102", "420106"], path.name)
    assert caps == {"420102": 3, "420106": 12} and warnings == []
    path.write_text('"420106" = -4\n', encoding="utf-8")
    with pytest.raises(UsageError, match="cap.toml: district '420106': capacity must be a non-negative"):
        resolve_capacity(read_capacity(path), ["420106"], path.name)


def test_capacity_file_rows_are_checked_in_order_and_each_problem_is_one_line(tmp_path: Path):
    path = tmp_path / "cap.csv"
    path.write_text("district,capacity\n420106,3\n,x\n420106,4\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"^\S*cap.csv: row 3, column district: empty$"):
        read_capacity(path)
    path.write_text("district,capacity\n420106,3\n420106,4\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"cap.csv: row 3, column district: '420106' listed twice$"):
        read_capacity(path)
    toml = tmp_path / "cap.toml"
    toml.write_text('[capacity.420106]\nstaff = 3\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"cap.toml: entry '420106' must be a number of inspections, "
                                         r"not a table$"):
        read_capacity(toml)


def test_district_missing_from_the_capacity_file_gets_zero_with_a_warning():
    caps, warnings = resolve_capacity({"420106": 4}, ["420102", "420106"])
    assert caps == {"420102": 0, "420106": 4}
    assert "420102" in warnings[0]


# --- output files ----------------------------------------------------------------------------


def test_excel_has_a_summary_and_one_sheet_per_district_with_frozen_filtered_header(tmp_path: Path):
    import openpyxl

    result = plan_for(grades_frame(300), 8)
    out = tmp_path / "plan.xlsx"
    write_plan_files(result, out)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["汇总 summary", "420102 江岸区", "420106 武昌区"]
    sheet = book["420106 武昌区"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref is not None
    headers = [c.value for c in sheet[1]]
    assert "统一社会信用代码 USCC" in headers and "列入原因 Why" in headers
    assert sheet.max_row == 1 + result.plan.filter(pl.col("district") == "420106").height
    assert book["汇总 summary"].freeze_panes == "A2"


def test_csv_is_utf8_with_bom_and_meta_records_seed_policy_and_grades(tmp_path: Path):
    result = plan_for(grades_frame(100), 5, seed=42)
    out = tmp_path / "plan.csv"
    write_plan_files(result, out)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert pl.read_csv(out).height == result.plan.height
    meta = json.loads(meta_path(out).read_text(encoding="utf-8"))
    assert meta["seed"] == 42 and meta["policy_version"] == POLICY.version
    assert meta["grades_digest"].startswith("sha256:") and meta["period"] == "2025-06"


def test_top_reasons_come_from_the_grades():
    plan = plan_for(grades_frame(50, districts=("420106",)), 3).plan
    assert plan["top_reasons"][0] == "近365天抽检不合格2次（2 failed sampling tests in the last 365 days）"


# --- the command, end to end -----------------------------------------------------------------


def _run(argv: list[str]) -> int:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return int(exit_.value.code or 0)


def test_plan_command_writes_excel_meta_and_replays_identically(small_city: Path, small_lake: Path,
                                                                 tmp_path: Path, monkeypatch, capsys):
    from riskengine.core.config import get_settings
    from riskengine.supervision.simulate import grades_from_truth, read_source_table, read_truth

    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    get_settings.cache_clear()
    grades = grades_from_truth(read_truth(small_city), read_source_table(small_city, "enterprises"), AS_OF)
    grades_file = tmp_path / "grades.parquet"
    grades.write_parquet(grades_file)
    out = tmp_path / "out" / "plan.xlsx"
    try:
        code = _run(["plan", "--lake", str(small_lake), "--as-of", "2025-06-01", "--capacity", "4",
                     "--seed", "9", "--grades", str(grades_file), "--out", str(out), "--no-store"])
        assert code == 0
        meta = json.loads(meta_path(out).read_text(encoding="utf-8"))
        assert meta["seed"] == 9 and meta["grades_source"]["kind"] == "file"
        assert all(d["scheduled"] <= 4 for d in meta["districts"])
        assert _run(["plan", "--replay", str(meta_path(out))]) == 0
        assert "identical list" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_plan_command_rejects_a_bad_capacity_file_with_exit_2(small_lake: Path, tmp_path: Path, capsys):
    cap = tmp_path / "cap.csv"
    cap.write_text("district,capacity\n420106,lots\n", encoding="utf-8")
    code = _run(["plan", "--lake", str(small_lake), "--as-of", "2025-06-01", "--capacity", str(cap),
                 "--out", str(tmp_path / "p.csv")])
    assert code == 2
    assert "row 2 (district 420106), column capacity" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


# --- period and policy version ---------------------------------------------------------------


def test_period_is_the_month_from_as_of_clipped_at_month_end():
    from riskengine.core.timerule import add_months, period_label, period_of

    assert period_of(date(2025, 6, 1)) == (date(2025, 6, 1), date(2025, 7, 1))
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert period_label(date(2025, 6, 1)) == "2025-06"
    assert period_label(date(2025, 6, 15)) == "2025-06-15/2025-07-14"


def test_plan_records_the_version_of_the_policy_it_used():
    from riskengine.supervision.policy import parse_policy

    custom = parse_policy('version = "bureau-2026"\n' + "[default]\n" + "".join(
        f"{g} = {{ ratio = 0.2 }}\n" for g in "ABCD"))
    result = make_plan(grades_frame(50), tables_of(), AS_OF, 3, 1, custom)
    assert result.meta["policy_version"] == "bureau-2026"
    assert result.meta["policy_digest"] == custom.digest


def test_capacity_too_small_for_the_yearly_floor_is_warned():
    grades = grades_frame(5000, districts=("420106",), sectors=("retail",))
    result = plan_for(grades, 1)
    assert result.meta["districts"][0]["min_annual_probability"] < 0.01
    assert any("only" in w and "a year at this capacity" in w for w in result.warnings)
    assert not any("a year at this capacity" in w for w in plan_for(grades, 60).warnings)


# --- carry-over of over-capacity items ------------------------------------------------------------


def test_over_capacity_items_are_carried_into_the_next_plan_until_visited():
    from riskengine.supervision.mandatory import CarryOver

    grades = grades_frame(60, districts=("420106",), sectors=("retail",))
    failing = grades.sort("score", descending=True)["enterprise_id"].to_list()[10:15]
    june = plan_for(grades, 2, tables_of([inspection(e, date(2025, 5, 20), "fail") for e in failing]))
    over = june.plan.filter(pl.col("status") == STATUS_OVER)["enterprise_id"].to_list()
    assert len(over) == 3
    carry = CarryOver.from_plan(june.plan, june.meta)
    assert (carry.period, carry.period_start) == ("2025-06", AS_OF)
    assert sorted(carry.enterprise_ids) == sorted(over)

    # One of them is inspected in June; as of July nothing else is mandatory (capacity 10).
    july = date(2025, 7, 1)
    visited = over[0]
    tables = tables_of([inspection(e, date(2025, 5, 20), "fail") for e in failing]
                       + [inspection(visited, date(2025, 6, 10), "pass", n=1)])
    result = make_plan(grades, tables, july, 10, 1, POLICY, carry_over=carry)
    mandatory = result.plan.filter(pl.col("stratum") == "mandatory")
    assert set(mandatory["enterprise_id"]) == set(over) - {visited}
    assert all(w.startswith(f"上期（{carry.period}）超出检查能力未安排，顺延") for w in mandatory["why"])
    assert all(mandatory["due_on"] == date(2025, 7, 15))
    assert result.meta["carried_over"]["enterprise_ids"] == sorted(over)
    # Without the carry-over the same July plan has no mandatory item at all.
    plain = make_plan(grades, tables, july, 10, 1, POLICY)
    assert plain.plan.filter(pl.col("stratum") == "mandatory").height == 0


def test_a_carried_item_of_an_enterprise_no_longer_active_is_not_planned():
    from riskengine.supervision.mandatory import CarryOver

    grades = grades_frame(30, districts=("420106",), sectors=("retail",))
    gone = "E99999"  # not among the graded active enterprises any more
    keep = grades["enterprise_id"][3]
    carry = CarryOver("2025-05", date(2025, 5, 1), (gone, keep))
    plan = plan_for(grades, 5, carry_over=carry).plan
    assert plan.filter(pl.col("stratum") == "mandatory")["enterprise_id"].to_list() == [keep]
    assert gone not in plan["enterprise_id"].to_list()


def test_plan_command_carries_the_previous_plans_shortfall_from_the_store(
        small_city: Path, small_lake: Path, tmp_path: Path, monkeypatch, capsys):
    from riskengine.core.config import get_settings
    from riskengine.lake.layout import scan_table
    from riskengine.supervision.simulate import grades_from_truth, read_source_table, read_truth

    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        enterprises = read_source_table(small_city, "enterprises")
        grades_file = tmp_path / "grades.parquet"
        grades_from_truth(read_truth(small_city), enterprises, AS_OF).write_parquet(grades_file)
        june, july = tmp_path / "june.csv", tmp_path / "july.csv"
        base = ["plan", "--lake", str(small_lake), "--capacity", "1", "--seed", "3",
                "--grades", str(grades_file)]
        assert _run([*base, "--as-of", "2025-06-01", "--out", str(june)]) == 0
        first = pl.read_csv(june)
        over = set(first.filter((pl.col("stratum") == "mandatory") & (pl.col("status") == STATUS_OVER))
                   ["enterprise_id"])
        assert over, "capacity 1 must leave mandatory items over capacity in the small city"
        capsys.readouterr()
        assert _run([*base, "--as-of", "2025-07-01", "--out", str(july)]) == 0
        assert "carry-over:" in capsys.readouterr().err
        second = pl.read_csv(july)
        carried = set(second.filter(pl.col("why").str.contains("carried over from 2025-06"))["enterprise_id"])
        # Every June shortfall is back in July unless an inspection of it since June 1st is known by July.
        july_day = date(2025, 7, 1)
        inspected = set(scan_table(small_lake, "inspections").filter(
            (pl.col("inspected_on") >= date(2025, 6, 1)) & (pl.col("inspected_on") < july_day)
            & (pl.col("recorded_on").is_null() | (pl.col("recorded_on") < july_day))
        ).collect()["enterprise_id"])
        assert carried == over - inspected and carried
        meta = json.loads(meta_path(july).read_text(encoding="utf-8"))
        assert meta["carried_over"]["period"] == "2025-06"
        assert _run(["plan", "--replay", str(meta_path(july))]) == 0
        assert "identical list" in capsys.readouterr().err
        off = tmp_path / "july-off.csv"
        assert _run([*base, "--as-of", "2025-07-01", "--out", str(off), "--no-carry-over", "--no-store"]) == 0
        assert not pl.read_csv(off).filter(pl.col("why").str.contains("carried over"))["why"].len()
    finally:
        get_settings.cache_clear()


# --- capacity as the policy asks ------------------------------------------------------------------


def test_policy_capacity_schedules_every_mandatory_item_and_the_draw_the_ratios_ask_for():
    from riskengine.supervision.capacity import POLICY_CAPACITY

    grades = grades_frame(900, districts=("420106", "420102", "420111"), sectors=("retail", "wire_cable"))
    failing = grades["enterprise_id"].to_list()[:40:3]
    tables = tables_of([inspection(e, date(2025, 5, 20), "fail") for e in failing])
    result = plan_for(grades, POLICY_CAPACITY, tables)
    assert result.plan.filter(pl.col("status") == STATUS_OVER).height == 0
    assert result.meta["shortfalls"] == {}
    for district in result.meta["districts"]:
        assert district["capacity"] == district["scheduled"]
        assert district["mandatory_scheduled"] == district["mandatory"]
        assert district["random"] >= district["random_policy_expected"]
        assert district["min_annual_probability"] >= 0.01  # the floor holds without a warning
    assert not any("a year at this capacity" in w for w in result.warnings)
    # A flat capacity of one visit per district, by contrast, is short and says so.
    short = plan_for(grades, 1, tables)
    assert short.meta["shortfalls"] and any("over capacity" in w for w in short.warnings)


def test_plan_command_accepts_policy_as_capacity_and_rejects_other_words():
    from riskengine.cli.plan_cmds import _capacity

    assert _capacity("policy") == ("policy", "--capacity policy")
    assert _capacity(" Policy ") == ("policy", "--capacity policy")
    with pytest.raises(UsageError, match="'policy'"):
        _capacity("plenty")


def test_excel_sheet_names_are_valid_for_any_district(tmp_path: Path):
    import openpyxl

    odd = ("'quoted'", "ends'", "a[b]:c*d?e/f\\g", "长" * 40, "x" * 31 + "1", "x" * 31 + "2", "History",
           "汇总 SUMMARY")
    result = plan_for(grades_frame(len(odd) * 4, districts=odd), len(odd) * 2)
    out = tmp_path / "plan.xlsx"
    write_plan_files(result, out)
    names = openpyxl.load_workbook(out).sheetnames
    assert len(names) == 1 + len(odd)
    assert len({n.lower() for n in names}) == len(names)
    for name in names:
        assert 0 < len(name) <= 31 and not name.startswith("'") and not name.endswith("'")
        assert not set(name) & set("[]:*?/\\") and name.lower() != "history"


# --- early warnings left unacknowledged ------------------------------------------------------------


def test_an_overdue_warning_is_an_urgent_mandatory_item_with_the_warning_as_reason():
    grades = grades_frame(60, districts=("420106",), sectors=("retail",))
    target = grades.sort("score")["enterprise_id"][0]  # the lowest risk: never drawn first otherwise
    items = pl.DataFrame({"enterprise_id": [target, "E-not-graded"],
                          "why": ["预警未处置（W1） / unacknowledged warning (W1)", "x"]})
    result = make_plan(grades, tables_of(), AS_OF, 5, 1, POLICY, warning_items=items)
    mandatory = result.plan.filter(pl.col("stratum") == "mandatory")
    assert mandatory["enterprise_id"].to_list() == [target]
    assert mandatory["why"][0].startswith("预警未处置（W1）")
    assert mandatory["due_on"][0] == date(2025, 6, 15)
    assert result.meta["warning_items"][0]["enterprise_id"] == target
    assert make_plan(grades, tables_of(), AS_OF, 5, 1, POLICY).plan.filter(
        pl.col("stratum") == "mandatory").height == 0
