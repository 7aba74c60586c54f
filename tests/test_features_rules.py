"""Single behaviours of the feature pipeline, each on a tiny hand-made history."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from features import FEATURES, MODEL_FEATURES, build_features
from riskengine.core.errors import UsageError
from tests.feature_histories import to_lazy

D = date(2024, 6, 1)


def firm(eid: str = "E0", **kw: object) -> dict:
    return {
        "enterprise_id": eid,
        "district": "420106",
        "sector": "bakery",
        "established_on": date(2018, 1, 1),
        "registered_capital": 100.0,
        "legal_rep_id": None,
        "status": "active",
    } | kw


def inspection(on: date, outcome: str = "fail", eid: str = "E0", **kw: object) -> dict:
    return {
        "inspection_id": f"I{on}{eid}{kw.get('inspector_id')}{outcome}",
        "enterprise_id": eid,
        "inspected_on": on,
        "kind": "random",
        "outcome": outcome,
    } | kw


def penalty(on: date, severity: str, case: str = "C1", **kw: object) -> dict:
    return {
        "case_id": case,
        "enterprise_id": "E0",
        "decided_on": on,
        "severity": severity,
        "dishonest_list": False,
    } | kw


def licence(**kw: object) -> dict:
    return {
        "license_id": "L1",
        "enterprise_id": "E0",
        "kind": "production_license",
        "issued_on": date(2020, 1, 1),
        "status": "valid",
        "status_changed_on": date(2020, 1, 1),
    } | kw


def features(as_of: date | list[date] = D, **tables: list[dict]) -> pl.DataFrame:
    tables.setdefault("enterprises", [firm()])
    dates = as_of if isinstance(as_of, list) else [as_of]
    return build_features(to_lazy(tables), dates).collect()


def value(frame: pl.DataFrame, column: str, eid: str = "E0", as_of: date = D) -> object:
    row = frame.filter((pl.col("enterprise_id") == eid) & (pl.col("as_of") == as_of))
    assert row.height == 1
    return row[column][0]


# --- the time rule ---------------------------------------------------------------------------------


def test_an_event_dated_on_as_of_is_not_yet_known():
    f = features(inspections=[inspection(D)])
    assert value(f, "inspections__count_90d") == 0
    assert value(f, "inspections__never_inspected") == 1


def test_an_event_dated_the_day_before_as_of_is_known():
    f = features(inspections=[inspection(D - timedelta(days=1))])
    assert value(f, "inspections__fail_90d") == 1
    assert value(f, "inspections__days_since_last_fail") == 1


def test_a_late_recorded_event_counts_only_from_the_day_after_it_was_recorded():
    late = inspection(date(2024, 1, 10), recorded_on=D)
    f = features([D, D + timedelta(days=1)], inspections=[late])
    assert value(f, "inspections__fail_365d", as_of=D) == 0
    assert value(f, "inspections__fail_365d", as_of=D + timedelta(days=1)) == 1


def test_windows_hold_events_from_exactly_w_days_before_as_of():
    f = features(inspections=[inspection(D - timedelta(days=90)), inspection(D - timedelta(days=91))])
    assert value(f, "inspections__count_90d") == 1
    assert value(f, "inspections__count_365d") == 2


def test_many_as_of_dates_give_one_row_per_enterprise_and_date():
    dates = [date(2024, m, 1) for m in range(1, 13)]
    f = features(dates, inspections=[inspection(date(2024, 5, 15))])
    assert f.height == 12
    assert f.filter(pl.col("inspections__count_ever") == 1)["as_of"].to_list() == dates[5:]


# --- the population --------------------------------------------------------------------------------


def test_an_enterprise_without_any_event_gets_a_row_that_says_never_inspected():
    f = features(enterprises=[firm("E0"), firm("E1")], inspections=[inspection(date(2024, 1, 1))])
    assert value(f, "inspections__never_inspected", "E1") == 1
    assert value(f, "inspections__last_outcome", "E1") == "none"
    assert value(f, "inspections__days_since_last", "E1") is None
    assert value(f, "penalties__active", "E1") == 0


def test_an_enterprise_established_on_as_of_is_left_out():
    f = features(enterprises=[firm("E0"), firm("E1", established_on=D)])
    assert f["enterprise_id"].to_list() == ["E0"]


def test_missing_tables_count_as_empty():
    f = build_features({"enterprises": to_lazy({"enterprises": [firm()]})["enterprises"]}, [D]).collect()
    assert f.height == 1
    assert f.columns == ["enterprise_id", "as_of", *FEATURES]


# --- penalties (SAMR Order 107 influence periods) --------------------------------------------------


def test_a_minor_penalty_counts_until_the_day_three_months_after_its_decision():
    decided = date(2024, 3, 1)  # period ends 2024-06-01 = D
    f = features([D - timedelta(days=1), D], penalties=[penalty(decided, "minor")])
    assert value(f, "penalties__minor_active", as_of=D - timedelta(days=1)) == 1
    assert value(f, "penalties__minor_active", as_of=D) == 0


def test_a_credit_repair_ends_a_moderate_penalty_but_not_within_three_months():
    repair = {"repair_id": "X1", "case_id": "C1", "repaired_on": date(2024, 1, 20)}
    f = features(
        [date(2024, 4, 30), date(2024, 5, 1)],
        penalties=[penalty(date(2024, 2, 1), "moderate")],
        credit_repairs=[repair],
    )
    assert value(f, "penalties__moderate_active", as_of=date(2024, 4, 30)) == 1
    assert value(f, "penalties__moderate_active", as_of=date(2024, 5, 1)) == 0


def test_a_repair_dated_on_as_of_is_not_yet_known():
    decided = date(2023, 1, 1)  # serious: 3 years, at least 1 year
    repair = {"repair_id": "X1", "case_id": "C1", "repaired_on": D}
    f = features([D, D + timedelta(days=1)], penalties=[penalty(decided, "serious")], credit_repairs=[repair])
    assert value(f, "penalties__serious_active", as_of=D) == 1
    assert value(f, "penalties__serious_active", as_of=D + timedelta(days=1)) == 0


def test_an_unrepaired_moderate_penalty_counts_for_one_calendar_year():
    f = features([date(2025, 2, 28), date(2025, 3, 1)], penalties=[penalty(date(2024, 2, 29), "moderate")])
    assert (
        value(f, "penalties__moderate_active", as_of=date(2025, 2, 28)) == 0
    )  # 2024-02-29 + 1y = 2025-02-28
    assert value(f, "penalties__moderate_365d", as_of=date(2025, 2, 28)) == 1


def test_the_dishonesty_list_holds_while_its_penalty_counts():
    pen = penalty(date(2021, 6, 2), "serious", dishonest_list=True)
    f = features([D, D + timedelta(days=1)], penalties=[pen])
    assert value(f, "penalties__dishonest_active", as_of=D) == 1
    assert value(f, "penalties__dishonest_active", as_of=D + timedelta(days=1)) == 0


# --- licences --------------------------------------------------------------------------------------


def test_a_licence_revoked_after_as_of_was_still_valid_as_of():
    lic = licence(status="revoked", status_changed_on=D)
    f = features([D, D + timedelta(days=1)], enterprises=[firm(sector="wire_cable")], licenses=[lic])
    assert value(f, "licenses__valid_production_license", as_of=D) == 1
    assert value(f, "licenses__revoked", as_of=D) == 0
    assert value(f, "licenses__revoked", as_of=D + timedelta(days=1)) == 1
    assert value(f, "licenses__required_missing", as_of=D + timedelta(days=1)) == 1


def test_a_licence_is_valid_through_its_expiry_day():
    lic = licence(expires_on=D)
    f = features([D, D + timedelta(days=1)], licenses=[lic])
    assert value(f, "licenses__days_to_expiry", as_of=D) == 0
    assert value(f, "licenses__expired", as_of=D + timedelta(days=1)) == 1
    assert value(f, "licenses__valid", as_of=D + timedelta(days=1)) == 0


def test_fire_products_without_a_ccc_certificate_lack_a_required_licence():
    f = features(enterprises=[firm(sector="fire_products")], licenses=[licence()])
    assert value(f, "licenses__required_missing") == 1
    assert value(f, "licenses__valid_production_license") == 1


# --- inspector strictness, associations, severity --------------------------------------------------


def test_inspector_strictness_is_zero_for_an_average_inspector_and_uses_only_earlier_inspections():
    history = [
        inspection(date(2024, 1, 2), "fail", "E1", inspector_id="P1"),
        inspection(date(2024, 1, 3), "pass", "E1", inspector_id="P2"),
        inspection(date(2024, 2, 1), "pass", "E0", inspector_id="P1"),
        inspection(D, "fail", "E1", inspector_id="P2"),  # on as_of: unknown
    ]
    f = features(enterprises=[firm("E0"), firm("E1")], inspections=history)
    p, m = 1 / 3, 20.0
    assert value(f, "inspections__inspector_strictness_last") == pytest.approx((1 + m * p) / (2 + m) - p)
    assert FEATURES["inspections__inspector_strictness_last"].nuisance
    assert FEATURES["inspections__inspector_strictness_last"].neutral == 0.0


def test_associated_enterprises_share_a_legal_representative_and_their_adverse_events():
    ents = [
        firm("E0", legal_rep_id="R"),
        firm("E1", legal_rep_id="R"),
        firm("E2", legal_rep_id="R"),
        firm("E3"),
    ]
    f = features(
        enterprises=ents,
        inspections=[inspection(date(2024, 5, 1), eid="E1")],
        penalties=[penalty(date(2024, 1, 1), "serious", dishonest_list=True) | {"enterprise_id": "E2"}],
    )
    assert value(f, "associations__count") == 2
    assert value(f, "associations__adverse_365d") == 2
    assert value(f, "associations__dishonest_active") == 1
    assert value(f, "associations__dishonest_active", "E2") == 0  # its own listing is not an association
    assert value(f, "associations__count", "E3") == 0


def test_the_severity_index_halves_every_half_life():
    fail = [inspection(D - timedelta(days=180))]
    f = build_features(
        to_lazy({"enterprises": [firm()], "inspections": fail}),
        [D, D + timedelta(days=180)],
        half_life_days=180.0,
    ).collect()
    assert value(f, "severity__index") == pytest.approx(3.0 * 0.5)
    assert value(f, "severity__index", as_of=D + timedelta(days=180)) == pytest.approx(3.0 * 0.25)


# --- arguments and catalog -------------------------------------------------------------------------


@pytest.mark.parametrize("half_life", [0.0, -5.0])
def test_a_half_life_that_is_not_positive_is_refused(half_life):
    with pytest.raises(UsageError, match="half_life_days must be a positive number of days; got"):
        build_features(to_lazy({"enterprises": [firm()]}), [D], half_life_days=half_life)


def test_as_of_must_hold_dates():
    with pytest.raises(UsageError, match="as_of"):
        build_features(to_lazy({"enterprises": [firm()]}), [])
    with pytest.raises(UsageError, match="datetime.date"):
        build_features(to_lazy({"enterprises": [firm()]}), ["2024-01-01"])  # type: ignore[list-item]


def test_an_enterprise_id_listed_twice_is_refused_rather_than_misattributing_events():
    twice = {
        "enterprises": [firm("E0"), firm("E0"), firm("E1")],
        "inspections": [inspection(D - timedelta(days=9))],
    }
    with pytest.raises(UsageError, match="enterprise_id must be unique"):
        build_features(to_lazy(twice), [D])


def test_events_of_unknown_enterprises_are_left_out_and_the_rest_keep_their_own():
    f = features(
        enterprises=[firm("E0"), firm("E1")],
        inspections=[
            inspection(D - timedelta(days=9), eid="E1"),
            inspection(D - timedelta(days=8), eid="NOBODY"),
            inspection(D - timedelta(days=7), eid="E0"),
            inspection(D - timedelta(days=6), eid="E1"),
        ],
    )
    assert f["enterprise_id"].to_list() == ["E0", "E1"]
    assert value(f, "inspections__count_90d", "E0") == 1
    assert value(f, "inspections__count_90d", "E1") == 2


def test_the_catalog_describes_every_column_with_a_sign_and_texts_that_format():
    f = features(inspections=[inspection(date(2024, 1, 1))])
    assert f.columns[2:] == list(FEATURES)
    for name, spec in FEATURES.items():
        assert spec.monotone in (-1, 0, 1)
        assert spec.family == name.split("__")[0]
        sample = "fail" if spec.dtype == "str" else 3.0
        assert spec.text_zh.format(value=sample) and spec.text_en.format(value=sample)
        assert spec.categorical == (spec.dtype == "str")
        assert not spec.nuisance or spec.neutral is not None


def test_counts_of_bad_history_are_declared_never_to_lower_risk():
    for name in (
        "inspections__fail_365d",
        "sampling__fail_365d",
        "penalties__serious_active",
        "penalties__dishonest_active",
        "recalls__ordered_1095d",
        "complaints__count_365d",
    ):
        assert FEATURES[name].monotone == 1


def test_the_current_status_snapshot_is_kept_out_of_model_features():
    assert "profile__status" in FEATURES and "profile__status" not in MODEL_FEATURES
