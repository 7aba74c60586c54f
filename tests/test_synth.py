"""The synthetic city generator: determinism, valid codes, the contract, plausibility, dirty rows, CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from riskengine.core.contract import PILOT_SECTORS, TABLES
from riskengine.core.errors import UsageError
from riskengine.core.ids import is_valid_uscc, uscc_check_char
from riskengine.synth import (
    CITY_TABLES,
    DISTRICTS,
    SyntheticCity,
    generate_city,
    generate_city_frames,
    generate_tables,
    make_usccs,
)
from riskengine.synth.dirty import KINDS

START, END = date(2019, 1, 1), date(2025, 12, 31)


@pytest.fixture(scope="module")
def city() -> SyntheticCity:
    """A city big enough for rates and shares to be stable, small enough to build in about a second."""
    return generate_city_frames(6000, seed=11)


@pytest.fixture(scope="module")
def dirty_city() -> SyntheticCity:
    return generate_city_frames(800, seed=5, dirty=0.03)


def _event_years(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    parts = [tables[name].select("enterprise_id", pl.col(TABLES[name].event_date).dt.year().alias("year"))
             for name in ("inspections", "sampling_tests", "penalties", "recalls", "complaints")]
    return pl.concat(parts).unique()


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_identical_tables() -> None:
    first, second = generate_tables(300, seed=3), generate_tables(300, seed=3)
    for name in CITY_TABLES:
        assert first[name].equals(second[name]), name


def test_different_seeds_give_different_cities() -> None:
    first, second = generate_tables(300, seed=3), generate_tables(300, seed=4)
    assert not first["enterprises"].equals(second["enterprises"])
    assert not first["inspections"].equals(second["inspections"])


def test_written_city_is_byte_identical_for_a_seed(tmp_path: Path) -> None:
    generate_city(tmp_path / "a", 200, seed=9)
    generate_city(tmp_path / "b", 200, seed=9)
    for name in CITY_TABLES:
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (tmp_path / "b" / f"{name}.csv").read_bytes()
    assert pl.read_parquet(tmp_path / "a/_truth/risk.parquet").equals(
        pl.read_parquet(tmp_path / "b/_truth/risk.parquet"))


# --- identifiers ---------------------------------------------------------------------------------


def test_every_enterprise_id_is_a_valid_unique_wuhan_uscc(city: SyntheticCity) -> None:
    ids = city.tables["enterprises"]["enterprise_id"]
    assert ids.n_unique() == ids.len()
    assert all(is_valid_uscc(code) for code in ids)
    assert ids.str.slice(2, 6).is_in(list(DISTRICTS)).all()
    # The division in the code is the enterprise's district.
    assert (ids.str.slice(2, 6) == city.tables["enterprises"]["district"]).all()


def test_vectorised_check_character_matches_the_contract() -> None:
    numbers = np.random.default_rng(0).choice(10**8, 500, replace=False)
    codes = make_usccs(np.full(500, "420106"), numbers)
    assert [c[17] for c in codes] == [uscc_check_char(c[:17]) for c in codes]


def test_corrupted_codes_fail_the_check() -> None:
    codes = make_usccs(np.full(100, "420102"), np.arange(100), corrupt=np.ones(100, dtype=bool))
    assert not any(is_valid_uscc(c) for c in codes)


# --- the contract --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CITY_TABLES)
def test_tables_have_the_contract_columns_and_types(city: SyntheticCity, name: str) -> None:
    assert dict(city.tables[name].schema) == TABLES[name].schema


@pytest.mark.parametrize("name", CITY_TABLES)
def test_rows_obey_every_column_rule(city: SyntheticCity, name: str) -> None:
    frame, spec = city.tables[name], TABLES[name]
    assert frame.height > 0
    assert frame[spec.key].n_unique() == frame.height
    for column in spec.columns:
        values = frame[column.name]
        if column.required:
            assert values.null_count() == 0, column.name
        if column.enum:
            assert values.drop_nulls().is_in(list(column.enum)).all(), column.name
        if column.minimum is not None:
            assert (values.drop_nulls() >= column.minimum).all(), column.name
        if column.references:
            target_table, target_column = column.references
            assert values.is_in(city.tables[target_table][target_column].implode()).all(), column.name


@pytest.mark.parametrize("name", [n for n in CITY_TABLES if TABLES[n].event_date])
def test_events_lie_in_the_period_and_are_recorded_on_or_after_them(city: SyntheticCity, name: str) -> None:
    frame, event = city.tables[name], TABLES[name].event_date
    earliest = date(1990, 1, 1) if name == "licenses" else START  # licences may predate the period
    assert frame[event].min() >= earliest and frame[event].max() <= END
    assert (frame["recorded_on"] >= frame[event]).all() and frame["recorded_on"].max() <= END


def test_truth_has_one_row_per_existing_enterprise_month(city: SyntheticCity) -> None:
    truth = city.truth
    assert dict(truth.schema) == {"enterprise_id": pl.String, "month": pl.Date, "p_fail": pl.Float64}
    assert truth.select("enterprise_id", "month").is_unique().all()
    assert (truth["month"].dt.day() == 1).all()
    assert truth["month"].min() == START and truth["month"].max() == date(2025, 12, 1)
    assert ((truth["p_fail"] > 0) & (truth["p_fail"] < 1)).all()
    assert truth["enterprise_id"].is_in(city.tables["enterprises"]["enterprise_id"].implode()).all()


def test_every_enterprise_has_a_finite_truth_for_every_month_it_existed() -> None:
    # Registered capital has a floor of 1 (10,000 CNY): log(0) would make the latent risk infinite.
    city = generate_city_frames(20_000, seed=1, start="2025-07-01", end="2025-12-31")
    ent = city.tables["enterprises"]
    assert ent["registered_capital"].min() >= 1.0
    assert city.truth["p_fail"].is_finite().all()
    assert city.truth["enterprise_id"].n_unique() == ent.height


def test_a_custom_period_bounds_events_and_truth() -> None:
    city = generate_city_frames(400, seed=2, start="2020-03-15", end="2021-06-10")
    for name in CITY_TABLES:
        event = TABLES[name].event_date
        if event and name != "licenses":
            dates = city.tables[name][event]
            assert dates.min() >= date(2020, 3, 15) and dates.max() <= date(2021, 6, 10), name
    assert city.truth["month"].min() == date(2020, 3, 1) and city.truth["month"].max() == date(2021, 6, 1)


# --- plausibility --------------------------------------------------------------------------------


def test_p_fail_is_the_fail_rate_of_random_inspections(city: SyntheticCity) -> None:
    # The truth's meaning (CONTRACT section 1): the chance an average inspector finds a failure.
    random = (city.tables["inspections"].filter(pl.col("kind") == "random")
              .with_columns(month=pl.col("inspected_on").dt.truncate("1mo"))
              .join(city.truth, on=["enterprise_id", "month"]))
    assert random.height > 1000
    assert abs((random["outcome"] == "fail").mean() - random["p_fail"].mean()) < 0.03


def test_pilot_sectors_are_small_but_present(city: SyntheticCity) -> None:
    shares = city.tables["enterprises"]["sector"].value_counts(normalize=True)
    share = dict(zip(shares["sector"], shares["proportion"], strict=True))
    for sector in PILOT_SECTORS:
        assert 0.002 < share[sector] < 0.03, sector
    assert max(share, key=share.__getitem__) not in PILOT_SECTORS


def test_all_thirteen_districts_are_present_with_hongshan_largest(city: SyntheticCity) -> None:
    counts = city.tables["enterprises"]["district"].value_counts().sort("count", descending=True)
    assert counts.height == 13
    assert counts["district"][0] == "420111"  # 洪山区


def test_random_inspections_reach_a_few_percent_of_enterprises_a_year(city: SyntheticCity) -> None:
    active = city.truth.group_by(pl.col("month").dt.year().alias("year")).agg(
        pl.col("enterprise_id").n_unique().alias("enterprises"))
    drawn = (city.tables["inspections"].filter(pl.col("kind") == "random")
             .group_by(pl.col("inspected_on").dt.year().alias("year")).len())
    ratio = drawn.join(active, on="year").select(pl.col("len") / pl.col("enterprises")).to_series()
    assert ratio.len() == 7
    assert ratio.min() > 0.02 and ratio.max() < 0.08


def test_most_enterprise_years_have_no_event(city: SyntheticCity) -> None:
    existing = city.truth.select("enterprise_id", pl.col("month").dt.year().alias("year")).unique()
    with_event = _event_years(city.tables).join(existing, on=["enterprise_id", "year"])
    assert with_event.height / existing.height < 0.5


def test_random_inspections_fail_more_often_where_latent_risk_is_high(city: SyntheticCity) -> None:
    random = (city.tables["inspections"].filter(pl.col("kind") == "random")
              .with_columns(month=pl.col("inspected_on").dt.truncate("1mo"))
              .join(city.truth, on=["enterprise_id", "month"]))
    high = random["p_fail"] > random["p_fail"].median()
    fail = random["outcome"] == "fail"
    assert fail.filter(high).mean() > 2 * fail.filter(~high).mean()


def test_strict_inspectors_fail_more(city: SyntheticCity) -> None:
    rated = city.tables["inspections"].join(city.inspectors, on="inspector_id")
    strict = rated["strictness"] > 0
    fail = rated["outcome"] == "fail"
    assert fail.filter(strict).mean() > fail.filter(~strict).mean() + 0.03


def test_targeted_inspections_find_more_than_random_ones(city: SyntheticCity) -> None:
    rates = city.tables["inspections"].group_by("kind").agg((pl.col("outcome") == "fail").mean())
    rate = dict(rates.iter_rows())
    assert rate["targeted"] > rate["random"] and rate["complaint"] > rate["random"]


def test_findings_agree_with_the_outcome(city: SyntheticCity) -> None:
    insp = city.tables["inspections"]
    serious = pl.col("findings_serious") + pl.col("findings_critical")
    assert insp.filter(pl.col("outcome") == "pass").select(
        pl.sum_horizontal(pl.col("^findings_.*$")).max()).item() == 0
    assert insp.filter(pl.col("outcome") == "fail").select(serious.min()).item() >= 1
    assert insp.filter(pl.col("outcome") == "conditional").select(
        (pl.col("findings_minor") >= 1).all() & (serious == 0).all()).item()


def test_riskier_enterprises_draw_more_complaints(city: SyntheticCity) -> None:
    mean_p = city.truth.group_by("enterprise_id").agg(pl.col("p_fail").mean(), pl.len().alias("months"))
    counts = city.tables["complaints"].group_by("enterprise_id").len()
    rate = mean_p.join(counts, on="enterprise_id", how="left").with_columns(
        per_month=pl.col("len").fill_null(0) / pl.col("months"))
    top = rate.filter(pl.col("p_fail") > pl.col("p_fail").quantile(0.75))["per_month"].mean()
    bottom = rate.filter(pl.col("p_fail") < pl.col("p_fail").quantile(0.25))["per_month"].mean()
    assert top > 3 * bottom


def test_a_share_of_penalties_is_recorded_late(city: SyntheticCity) -> None:
    pen = city.tables["penalties"]
    late = (pen["recorded_on"] - pen["decided_on"]).dt.total_days() >= 7
    assert 0.15 < late.mean() < 0.6
    assert set(pen["severity"]) == {"minor", "moderate", "serious"}
    assert pen.filter(pl.col("dishonest_list"))["severity"].unique().to_list() == ["serious"]


def test_credit_repairs_respect_the_minimum_influence_periods(city: SyntheticCity) -> None:
    # SAMR Order 107: moderate penalties can be repaired after 3 months, serious ones after a year.
    repairs = city.tables["credit_repairs"].join(city.tables["penalties"], on="case_id")
    assert repairs.height > 0
    assert set(repairs["severity"]) <= {"moderate", "serious"}
    months = (pl.col("repaired_on").dt.year() - pl.col("decided_on").dt.year()) * 12 + (
        pl.col("repaired_on").dt.month() - pl.col("decided_on").dt.month())
    assert repairs.filter(pl.col("severity") == "moderate").select(months.min()).item() >= 3
    assert repairs.filter(pl.col("severity") == "serious").select(months.min()).item() >= 12


def test_licences_match_their_sector(city: SyntheticCity) -> None:
    kinds = city.tables["licenses"].join(city.tables["enterprises"], on="enterprise_id").group_by(
        "sector").agg(pl.col("kind").unique())
    kind = {row[0]: set(row[1]) for row in kinds.iter_rows()}
    assert kind["wire_cable"] == {"production_license"}
    assert kind["fire_products"] == {"ccc"}
    assert kind["food_related"] == {"food_contact"}
    assert kind["food_production"] == {"food_production"}


def test_some_enterprises_leave_and_legal_representatives_are_shared(city: SyntheticCity) -> None:
    ent = city.tables["enterprises"]
    status = dict(ent["status"].value_counts().iter_rows())
    assert status["active"] > ent.height / 2
    assert status["deregistered"] > 0 and status["revoked"] > 0
    clusters = ent.group_by("legal_rep_id").len()
    assert clusters.filter(pl.col("len") >= 2).height > ent.height / 50


def test_only_product_sectors_are_sampled(city: SyntheticCity) -> None:
    sampled = city.tables["sampling_tests"].join(city.tables["enterprises"], on="enterprise_id")
    assert set(sampled["sector"]) <= {"wire_cable", "fire_products", "food_related", "food_production",
                                      "manufacturing"}
    assert (sampled.filter(pl.col("result") == "pass")["hazard"].null_count()
            == sampled.filter(pl.col("result") == "pass").height)


# --- dirty rows ----------------------------------------------------------------------------------


def test_dirty_mode_injects_every_kind(dirty_city: SyntheticCity) -> None:
    by_kind = dirty_city.summary["injected"]["by_kind"]
    assert set(by_kind) == set(KINDS)
    assert all(count >= 1 for count in by_kind.values()), by_kind


def test_dirty_rows_are_added_and_clean_rows_kept(dirty_city: SyntheticCity) -> None:
    clean = generate_city_frames(800, seed=5)
    by_table = dirty_city.summary["injected"]["by_table"]
    for name in CITY_TABLES:
        added = sum(by_table.get(name, {}).values())
        assert dirty_city.tables[name].height == clean.tables[name].height + added, name
    ent = clean.tables["enterprises"]
    kept = dirty_city.tables["enterprises"].cast({"established_on": pl.String}).join(
        ent.cast({"established_on": pl.String}), on=ent.columns, how="semi")
    assert kept.unique().height == ent.height


def test_dirty_rows_break_the_rules_they_are_named_for(dirty_city: SyntheticCity) -> None:
    t = dirty_city.tables
    ids = t["enterprises"]["enterprise_id"]
    assert sum(not is_valid_uscc(code) for code in ids) >= 1
    known = ids.implode()
    unknown = sum(frame.filter(~pl.col("enterprise_id").is_in(known)).height
                  for name, frame in t.items() if name != "enterprises" and "enterprise_id" in frame.columns)
    assert unknown == dirty_city.summary["injected"]["by_kind"]["unknown_enterprise"] >= 1
    cases = t["penalties"]["case_id"].implode()
    assert t["credit_repairs"].filter(~pl.col("case_id").is_in(cases)).height >= 1
    # Conflicting duplicates share an id with different content; exact duplicates repeat the row.
    total_dup_ids = sum(frame[TABLES[name].key].is_duplicated().sum() for name, frame in t.items())
    assert total_dup_ids >= 2 * (dirty_city.summary["injected"]["by_kind"]["conflicting_duplicate"]
                                 + dirty_city.summary["injected"]["by_kind"]["exact_duplicate"])
    assert sum(frame.is_duplicated().sum() for frame in t.values()) >= 2


def test_dirty_dates_include_future_ancient_and_impossible_ones(dirty_city: SyntheticCity) -> None:
    values: list[str] = []
    for name, frame in dirty_city.tables.items():
        column = TABLES[name].event_date or "established_on"
        values += frame[column].cast(pl.String).drop_nulls().to_list()
    years = [int(v[:4]) for v in values]
    assert max(years) > date.today().year and min(years) < 1990

    def parses(v: str) -> bool:
        try:
            date.fromisoformat(v)
            return True
        except ValueError:
            return False

    assert any(not parses(v) for v in values)


def test_dirty_values_include_negatives_bad_enums_and_blanks(dirty_city: SyntheticCity) -> None:
    t = dirty_city.tables
    negatives = (t["penalties"].filter(pl.col("fine_cny") < 0).height
                 + t["enterprises"].filter(pl.col("registered_capital") < 0).height
                 + t["recalls"].filter(pl.col("units") < 0).height
                 + t["inspections"].filter(pl.min_horizontal(pl.col("^findings_.*$")) < 0).height)
    assert negatives >= 1
    bad_enum = 0
    for name, frame in t.items():
        for column in TABLES[name].columns:
            if column.enum:
                bad_enum += frame.filter(~pl.col(column.name).is_in(list(column.enum))).height
    assert bad_enum >= 1
    blanks = sum(frame.select(pl.col(c).null_count() for c in TABLES[name].required_columns).sum_horizontal()
                 .item() for name, frame in t.items())
    assert blanks >= 1


def test_parquet_dirty_city_keeps_typed_dates() -> None:
    city = generate_city_frames(300, seed=2, dirty=0.02, fmt="parquet")
    assert city.summary["injected"]["by_kind"]["unparseable_date"] == 0
    for name, frame in city.tables.items():
        assert frame.schema[TABLES[name].event_date or "established_on"] == pl.Date


# --- writing and the command line ----------------------------------------------------------------


def test_generate_city_writes_every_table_and_the_truth(tmp_path: Path) -> None:
    out = tmp_path / "city"
    summary = generate_city(out, 400, seed=1)
    for name in CITY_TABLES:
        frame = pl.read_csv(out / f"{name}.csv", schema_overrides=TABLES[name].schema)
        assert frame.height == summary["rows"][name]
    truth = pl.read_parquet(out / "_truth" / "risk.parquet")
    assert truth.columns == ["enterprise_id", "month", "p_fail"] and truth.height == summary["truth_rows"]
    assert json.loads((out / "_truth" / "summary.json").read_text(encoding="utf-8"))["enterprises"] == 400
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_parquet_format_replaces_an_earlier_csv_city(tmp_path: Path) -> None:
    generate_city(tmp_path, 100, seed=1)
    generate_city(tmp_path, 100, seed=1, fmt="parquet")
    assert sorted(p.name for p in tmp_path.glob("*.*")) == sorted(f"{n}.parquet" for n in CITY_TABLES)
    assert dict(pl.read_parquet(tmp_path / "penalties.parquet").schema) == TABLES["penalties"].schema


def test_a_clean_city_passes_ingest_without_quarantine(small_lake: Path) -> None:
    report = json.loads(next((small_lake / "_reports").glob("*.json")).read_text(encoding="utf-8"))
    assert report["tables"]["enterprises"]["accepted"] == 1500
    assert all(t["quarantined"] == 0 and t["duplicates"] == 0 for t in report["tables"].values())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_enterprises": 0}, "enterprises must be a positive integer; got 0."),
    ({"seed": -1}, "seed must be a non-negative integer; got -1."),
    ({"start": "2019-02-30"}, "start must be a date YYYY-MM-DD; got '2019-02-30'."),
    ({"start": "1985-01-01"}, "start must be on or after 1990-01-01"),
    ({"end": "2018-12-31"}, "end must be after start"),
    ({"end": (date.today() + timedelta(days=1)).isoformat()}, "end must not be after today"),
    ({"fmt": "xlsx"}, "format must be one of csv, parquet; got 'xlsx'."),
    ({"dirty": 1.0}, "dirty must be a fraction in [0, 1); got 1.0."),
])
def test_bad_parameters_are_refused_with_a_clear_message(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"n_enterprises": 10, "seed": 1} | kwargs
    with pytest.raises(UsageError) as err:
        generate_city(tmp_path / "out", **args)
    assert message in str(err.value)
    assert not (tmp_path / "out").exists()


def _run_cli(argv: list[str]) -> int:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return int(exit_.value.code or 0)


def test_cli_generate_writes_the_city_and_prints_rows_per_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run_cli(["generate", "--enterprises", "150", "--seed", "2", "--out", str(tmp_path / "c"),
                     "--dirty", "0.01"])
    out = capsys.readouterr().out
    assert code == 0
    assert all((tmp_path / "c" / f"{name}.csv").is_file() for name in CITY_TABLES)
    assert "enterprises" in out and "credit_repairs" in out


@pytest.mark.parametrize("argv", [
    ["--enterprises", "0"], ["--format", "xlsx"], ["--end", "2019-13-01"], ["--dirty", "-0.1"],
    ["--enterprises", "many"],
])
def test_cli_generate_exits_2_on_bad_arguments(tmp_path: Path, argv: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli(["generate", "--out", str(tmp_path / "c"), *argv]) == 2
    assert capsys.readouterr().err.strip()
