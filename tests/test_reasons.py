"""Reasons: SHAP contributions → the top risk-raising facts (models/reasons.py)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from models.artifact import CreditModel
from models.reason_groups import check_contributions, top_positive
from models.reason_texts import format_fact
from models.reasons import build_reasons
from riskengine.core.errors import ModelError

CATALOG = {
    "fails": {"text_zh": "近365天抽检不合格{value:.0f}次",
              "text_en": "{value:.0f} failed sampling tests in the last 365 days"},
    "complaints": {"text_zh": "近90天收到投诉{value:.0f}件",
                   "text_en": "{value:.0f} complaints in the last 90 days"},
    "capital": {"text_zh": "注册资本{value:,.0f}万元",
                "text_en": "registered capital {value:,.0f} (10k CNY)"},
    "strictness": {"text_zh": "检查人员严格程度{value:+.2f}", "text_en": "inspector strictness {value:+.2f}",
                   "nuisance": True},
}
NAMES = list(CATALOG)


@pytest.fixture(scope="module")
def tiny() -> tuple[CreditModel, pl.DataFrame]:
    """A small LightGBM model on made-up data where failures and complaints raise the risk."""
    rng = np.random.default_rng(3)
    n = 3000
    frame = pl.DataFrame({
        "fails": rng.poisson(0.6, n).astype(float),
        "complaints": rng.poisson(1.0, n).astype(float),
        "capital": rng.lognormal(5, 1, n),
        "strictness": rng.normal(0, 1, n),
    })
    logit = -2 + 1.2 * frame["fails"].to_numpy() + 0.5 * frame["complaints"].to_numpy() \
        + 0.4 * frame["strictness"].to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "seed": 1, "deterministic": True,
                         "num_threads": 1, "verbose": -1},
                        lgb.Dataset(frame.to_numpy(), y, feature_name=NAMES), num_boost_round=30)
    return CreditModel(booster, NAMES, neutral={"strictness": 0.0}), frame


def test_contributions_sum_to_the_raw_score(tiny):
    model, frame = tiny
    contrib = model.contributions(frame)
    assert np.allclose(contrib.sum(axis=1), model.predict_raw(frame))
    check_contributions(contrib, model.predict_raw(frame))  # does not raise


def test_contributions_that_do_not_add_up_are_refused(tiny):
    model, frame = tiny
    contrib = model.contributions(frame)
    contrib[5, 0] += 0.01
    with pytest.raises(ModelError, match="do not add up.*1 of 3000 rows"):
        check_contributions(contrib, model.predict_raw(frame))


def test_top_reasons_are_the_largest_positive_contributions_in_order():
    contrib = np.array([[0.5, -1.0, 2.0, 0.1, 0.3],
                        [-0.2, -0.1, 0.4, -0.3, 0.0]])
    index, value, valid = top_positive(contrib, 3)
    assert index[0].tolist() == [2, 0, 4] and value[0].tolist() == [2.0, 0.5, 0.3]
    assert valid[0].tolist() == [True, True, True]
    assert index[1, 0] == 2 and valid[1].tolist() == [True, False, False]


def test_excluded_columns_are_never_reasons():
    index, _, valid = top_positive(np.array([[5.0, 1.0, 2.0]]), 2, exclude=[0])
    assert index[0].tolist() == [2, 1] and valid.all()


def test_reasons_state_the_fact_with_the_enterprises_value(tiny):
    model, frame = tiny
    row = frame.with_row_index("i").filter((pl.col("fails") == 3) & (pl.col("complaints") >= 1)).head(1)
    one = row.drop("i")
    reasons = build_reasons(one, NAMES, model.contributions(one), catalog=CATALOG)[0].to_list()
    first = reasons[0]
    assert first["code"] == "fails"
    assert first["text_zh"] == "近365天抽检不合格3次"
    assert first["text_en"] == "3 failed sampling tests in the last 365 days"


def test_reasons_are_the_top_three_positive_contributions_with_their_signed_values(tiny):
    model, frame = tiny
    sample = frame.head(200)
    contrib = model.contributions(sample)
    reasons = build_reasons(sample, NAMES, contrib, catalog=CATALOG)
    candidates = [j for j, name in enumerate(NAMES) if name != "strictness"]  # nuisance excluded
    for i, row in enumerate(reasons.to_list()):
        expected = sorted((j for j in candidates if contrib[i, j] > 0), key=lambda j: -contrib[i, j])[:3]
        assert [r["code"] for r in row] == [NAMES[j] for j in expected]
        assert [r["contribution"] for r in row] == pytest.approx([contrib[i, j] for j in expected])


def test_nuisance_features_are_never_reasons(tiny):
    model, frame = tiny
    contrib = model.contributions(frame)
    contrib[:, NAMES.index("strictness")] = 10.0  # even a huge contribution
    reasons = build_reasons(frame, NAMES, contrib, catalog=CATALOG)
    codes = reasons.list.eval(pl.element().struct.field("code")).explode().drop_nulls()
    assert "strictness" not in codes.to_list()


def test_hard_rule_reason_follows_the_own_record_reasons(tiny):
    model, frame = tiny
    one = frame.head(2)
    fired = pl.Series([["R1_DISHONEST_LIST"], []], dtype=pl.List(pl.String))
    texts = {"R1_DISHONEST_LIST": ("列入严重违法失信名单", "on the dishonesty list")}
    reasons = build_reasons(one, NAMES, model.contributions(one), catalog=CATALOG, fired=fired,
                            rule_texts=texts)
    first = reasons[0].to_list()
    rule_at = [r["code"] for r in first].index("R1_DISHONEST_LIST")
    assert first[rule_at] == {"code": "R1_DISHONEST_LIST", "contribution": None,
                              "text_zh": "列入严重违法失信名单", "text_en": "on the dishonesty list"}
    assert all(r["contribution"] is not None and r["contribution"] > 0 for r in first[:rule_at])
    assert all(r["code"] != "R1_DISHONEST_LIST" for r in reasons[1].to_list())


def test_enterprise_with_nothing_raising_risk_has_no_reasons():
    frame = pl.DataFrame({"a": [1.0], "b": [2.0]})
    contrib = np.array([[-0.4, -0.1, -1.0]])
    assert build_reasons(frame, ["a", "b"], contrib, catalog={})[0].to_list() == []


def test_feature_without_template_is_shown_as_code_and_value():
    assert format_fact(None, "x__y", 2.5, "en") == "x__y = 2.5"
    assert format_fact("{value:.0f} things", "x__y", "text", "en") == "x__y = text"


def test_missing_value_keeps_the_sentence_and_says_no_record():
    assert format_fact("距上次检查{value:.0f}天", "d", None, "zh") == "距上次检查—天（无记录）"
    nan = float("nan")
    assert format_fact("{value:.0%} of tests failed", "r", nan, "en") == "— of tests failed (no record)"
    assert format_fact(None, "x__y", None, "en") == "x__y (no record)"


def test_sector_and_district_reasons_name_them_in_the_reader_s_language() -> None:
    from models.reason_texts import format_fact

    assert format_fact("行业：{value}", "profile__sector", "wire_cable", "zh") == "行业：电线电缆"
    assert format_fact("sector: {value}", "profile__sector", "wire_cable", "en") == "sector: wires and cables"
    assert format_fact("所在区：{value}", "profile__district", "420106", "zh") == "所在区：武昌区（420106）"
    # English text stays in Latin script (plots fall back to English where no CJK font is installed).
    english = format_fact("district: {value}", "profile__district", "420106", "en")
    assert english == "district: Wuchang (420106)"
    # A key the engine does not know is shown as it is.
    assert format_fact("行业：{value}", "profile__sector", "shipbuilding", "zh") == "行业：shipbuilding"


def test_reason_kinds_follow_the_code_also_for_grades_stored_feature_by_feature() -> None:
    from models.reason_groups import reason_kind

    assert [reason_kind(c) for c in ("sampling", "baseline", "associations", "R1_DISHONEST_LIST",
                                     "BASELINE_CAP", "profile__sector", "associations__count",
                                     "sampling__fail_365d")] == [
        "own_record", "baseline", "associated", "rule", "rule", "baseline", "associated", "own_record"]


def test_the_baseline_sentence_stands_without_any_baseline_factor_among_the_features() -> None:
    # A bureau's lake with no district, sector, founding date or capital: the baseline line still
    # reads (it used to stop explain with "concat_horizontal didn't get any inputs").
    from models.reason_groups import BASELINE, group_contributions
    from models.reason_texts import group_texts

    names = ["inspections__fail_1095d"]
    features = pl.DataFrame({"enterprise_id": ["e1", "e2"], "inspections__fail_1095d": [2, 0]})
    contrib = np.array([[0.8, -1.0], [-0.2, -1.0]])
    groups = group_contributions(features, names, contrib)
    zh, en = group_texts(features, names, contrib, groups, BASELINE, np.arange(2))
    assert zh.to_list() == ["同类企业基准风险：不高于一般水平"] * 2
    assert en.to_list() == ["baseline risk of similar enterprises: not above the average"] * 2
