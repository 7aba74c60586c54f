"""The sentences of reasons, in Chinese and English: each group's from the records it counts
("近3年抽检不合格2次（其中高危害1次）"), the baseline line, and the catalog's sentence for the rest."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from models.reason_groups import (
    ASSOCIATIONS,
    BASELINE,
    CLEAN,
    OTHER,
    Groups,
    baseline_driven,
    default_catalog,
    numeric,
)
from riskengine.core.contract import district_label, sector_label


def _spec_texts(catalog: Mapping[str, Any] | None, code: str) -> tuple[str | None, str | None]:
    spec = (catalog or {}).get(code)
    if spec is None:
        return None, None
    if isinstance(spec, Mapping):
        return spec.get("text_zh"), spec.get("text_en")
    return getattr(spec, "text_zh", None), getattr(spec, "text_en", None)


# Categorical values shown by name rather than key ("行业：餐饮服务", not "行业：catering").
_VALUE_LABELS = {"profile__sector": sector_label, "profile__district": district_label}

_PLACEHOLDER = re.compile(r"\{value(?:![rsa])?(?::[^{}]*)?\}")


def format_fact(template: str | None, code: str, value: Any, lang: str) -> str:
    """The catalog sentence with the enterprise's value; a plain ``code = value`` if that fails.

    A missing value (e.g. a failure rate with no inspections) keeps the sentence, with a dash for the
    number and "(无记录)" / "(no record)" after it.
    """
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    if missing:
        note = "（无记录）" if lang == "zh" else " (no record)"
        if template and _PLACEHOLDER.search(template):
            return _PLACEHOLDER.sub("—", template) + note
        return f"{code}{note}"
    if code in _VALUE_LABELS and isinstance(value, str):
        value = _VALUE_LABELS[code](value, lang)
    if template:
        try:
            return template.format(value=value)
        except (ValueError, TypeError, KeyError, IndexError):
            pass
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{code} = {shown}"


def _texts_for(values: pl.Series, template_zh: str | None, template_en: str | None,
               code: str) -> tuple[pl.Series, pl.Series]:
    """Format both sentences once per distinct value of ``values`` and map them back."""
    distinct = values.drop_nulls().unique()
    texts = {lang: pl.Series([format_fact(t, code, v, lang) for v in distinct.to_list()], dtype=pl.String)
             for lang, t in (("zh", template_zh), ("en", template_en))}
    out = []
    for lang, template in (("zh", template_zh), ("en", template_en)):
        mapped = values.replace_strict(distinct, texts[lang], default=None, return_dtype=pl.String)
        out.append(mapped.fill_null(format_fact(template, code, None, lang)))  # null / NaN: no record
    return out[0], out[1]



# --- sentences ------------------------------------------------------------------------------------


def _i(frame: pl.DataFrame, name: str) -> pl.Expr:
    return numeric(frame, name).round(0).cast(pl.Int64)


def _join(parts: list[pl.Expr], sep: str) -> pl.Expr:
    """The non-null parts joined by ``sep``; null when there are no parts at all (a lake without any
    of a sentence's features), which Polars' concat_str refuses."""
    if not parts:
        return pl.lit(None, dtype=pl.String)
    return pl.concat_str(parts, separator=sep, ignore_nulls=True)


def _if(cond: pl.Expr, text: pl.Expr | str) -> pl.Expr:
    return pl.when(cond).then(pl.lit(text) if isinstance(text, str) else text)


def _money_zh(v: pl.Expr) -> pl.Expr:
    wan = (v / 10_000).round(2).cast(pl.String).str.replace(r"\.0+$", "")
    return pl.when(v >= 10_000).then(pl.format("{}万元", wan)).otherwise(
        pl.format("{}元", v.round(0).cast(pl.Int64)))


def _money_en(v: pl.Expr) -> pl.Expr:
    return pl.format("{} CNY", v.round(0).cast(pl.Int64))


def _texts(frame: pl.DataFrame, code: str) -> tuple[pl.Expr, pl.Expr] | None:
    """Chinese and English sentences of an own-record or associated group, from its components."""
    i = lambda name: _i(frame, name)  # noqa: E731
    if code == "inspections":
        fail, cond = i("inspections__fail_1095d"), i("inspections__conditional_1095d")
        crit, count = i("inspections__findings_critical_1095d"), i("inspections__count_1095d")
        never = i("inspections__never_inspected") > 0
        found = (fail + cond) > 0
        zh = (pl.when(found).then(pl.concat_str([
            pl.lit("近3年"),
            _join([_if(fail > 0, pl.format("检查不合格{}次", fail)),
                   _if(cond > 0, pl.format("检查发现问题责令整改{}次", cond))], "、"),
            _if(crit > 0, pl.format("，发现重大问题{}项", crit))], ignore_nulls=True))
            .when(never).then(pl.lit("从未接受过检查"))
            .when(count > 0).then(pl.format("近3年接受检查{}次，均合格", count))
            .otherwise(pl.lit("近3年未接受检查")))
        en = (pl.when(found).then(pl.concat_str([
            _join([_if(fail > 0, pl.format("{} failed inspection(s)", fail)),
                   _if(cond > 0, pl.format("{} inspection(s) with corrections ordered", cond))], " and "),
            pl.lit(" in the last 3 years"),
            _if(crit > 0, pl.format(", {} critical finding(s)", crit))], ignore_nulls=True))
            .when(never).then(pl.lit("never inspected"))
            .when(count > 0).then(pl.format("{} inspection(s) in the last 3 years, all passed", count))
            .otherwise(pl.lit("no inspection in the last 3 years")))
        return zh, en
    if code == "sampling":
        fail, high = i("sampling__fail_1095d"), i("sampling__high_hazard_fail_1095d")
        tests = i("sampling__tests_1095d")
        zh = (pl.when(fail > 0).then(pl.concat_str([pl.format("近3年抽检不合格{}次", fail),
                                                    _if(high > 0, pl.format("（其中高危害{}次）", high))],
                                                   ignore_nulls=True))
              .when(tests > 0).then(pl.format("近3年抽检{}次，均合格", tests))
              .otherwise(pl.lit("近3年未被抽检")))
        en = (pl.when(fail > 0).then(pl.concat_str([
            pl.format("{} failed sampling test(s) in the last 3 years", fail),
                                                    _if(high > 0, pl.format(" ({} high-hazard)", high))],
                                                   ignore_nulls=True))
              .when(tests > 0).then(pl.format("{} sampling test(s) in the last 3 years, all passed", tests))
              .otherwise(pl.lit("no sampling test in the last 3 years")))
        return zh, en
    if code == "penalties":
        active = i("penalties__active")
        count = pl.max_horizontal(i("penalties__count_1095d"), active)
        fine = numeric(frame, "penalties__fine_cny_active")
        dishonest = i("penalties__dishonest_active") > 0
        zh = pl.concat_str([
            _if(dishonest, "列入严重违法失信名单；"),
            pl.when(count > 0).then(pl.concat_str([
                pl.format("近3年行政处罚决定{}件", count),
                _if(active > 0, pl.format("，其中{}件仍在影响期内", active)),
                _if((active > 0) & (fine > 0), pl.format("（罚款合计{}）", _money_zh(fine)))],
                ignore_nulls=True)).otherwise(pl.lit("近3年无行政处罚"))], ignore_nulls=True)
        en = pl.concat_str([
            _if(dishonest, "on the serious-violation-and-dishonesty list; "),
            pl.when(count > 0).then(pl.concat_str([
                pl.format("{} penalty decision(s) in the last 3 years", count),
                _if(active > 0, pl.format(", {} still in the influence period", active)),
                _if((active > 0) & (fine > 0), pl.format(" (fines {})", _money_en(fine)))],
                ignore_nulls=True)).otherwise(pl.lit("no penalty in the last 3 years"))], ignore_nulls=True)
        return zh, en
    if code == "recalls":
        count, ordered = i("recalls__count_1095d"), i("recalls__ordered_1095d")
        zh = pl.when(count > 0).then(pl.concat_str([
            pl.format("近3年产品召回{}次", count),
            _if(ordered > 0, pl.format("（其中责令召回{}次）", ordered))],
            ignore_nulls=True)).otherwise(pl.lit("近3年无产品召回"))
        en = pl.when(count > 0).then(pl.concat_str([
            pl.format("{} product recall(s) in the last 3 years", count),
            _if(ordered > 0, pl.format(" ({} ordered)", ordered))], ignore_nulls=True)).otherwise(
            pl.lit("no product recall in the last 3 years"))
        return zh, en
    if code == "complaints":
        count, subst = i("complaints__count_365d"), i("complaints__substantiated_365d")
        zh = pl.when(count > 0).then(pl.concat_str([
            pl.format("近1年收到12315投诉举报{}件", count), _if(subst > 0, pl.format("（查实{}件）", subst))],
            ignore_nulls=True)).otherwise(pl.lit("近1年无投诉举报"))
        en = pl.when(count > 0).then(pl.concat_str([
            pl.format("{} complaint(s) to 12315 in the last year", count),
            _if(subst > 0, pl.format(" ({} substantiated)", subst))], ignore_nulls=True)).otherwise(
            pl.lit("no complaint in the last year"))
        return zh, en
    if code == "licenses":
        rev, sus = i("licenses__revoked"), i("licenses__suspended")
        miss, exp = i("licenses__required_missing"), i("licenses__expired")
        zh = pl.coalesce(_join([
            _if(rev > 0, pl.format("许可证被吊销{}张", rev)),
            _if(sus > 0, pl.format("许可证被暂停{}张", sus)),
            _if(miss > 0, pl.format("缺少所属行业必需的有效许可{}项", miss)),
            _if(exp > 0, pl.format("许可证已过期{}张", exp))], "、").replace("", None),
            pl.lit("许可证状态正常"))
        en = pl.coalesce(_join([
            _if(rev > 0, pl.format("{} licence(s) revoked", rev)),
            _if(sus > 0, pl.format("{} suspended", sus)),
            _if(miss > 0, pl.format("lacks {} licence kind(s) its sector requires", miss)),
            _if(exp > 0, pl.format("{} licence(s) expired", exp))], "; ").replace("", None),
            pl.lit("licences in order"))
        return zh, en
    if code == "lists":
        serious, abnormal = i("lists__serious_now") > 0, i("lists__abnormal_now") > 0
        listings = i("lists__listings_1095d")
        zh = (pl.when(serious | abnormal).then(pl.concat_str([
            _join([_if(serious, "列入严重违法失信名单"), _if(abnormal, "列入经营异常名录")], "、"),
            _if(listings > 0, pl.format("（近3年被列入名录{}次）", listings))], ignore_nulls=True))
            .when(listings > 0).then(pl.format("近3年曾被列入名录{}次，现已移出", listings))
            .otherwise(pl.lit("未列入经营异常名录或严重违法失信名单")))
        en = (pl.when(serious | abnormal).then(pl.concat_str([
            _join([_if(serious, "on the serious-dishonesty list"),
                   _if(abnormal, "on the abnormal-operation list")], " and "),
            _if(listings > 0, pl.format(" (listed {} time(s) in the last 3 years)", listings))],
            ignore_nulls=True))
            .when(listings > 0)
            .then(pl.format("listed {} time(s) in the last 3 years, since removed", listings))
            .otherwise(pl.lit("on no credit list")))
        return zh, en
    if code == "commitments":
        breached, recent = i("commitments__breached"), i("commitments__breached_365d")
        overdue, still = i("commitments__open_overdue"), i("commitments__open")
        zh = pl.coalesce(_join([
            _if(breached > 0, pl.concat_str([pl.format("违背信用承诺{}项", breached),
                                             _if(recent > 0, pl.format("（近1年{}项）", recent))],
                                            ignore_nulls=True)),
            _if(overdue > 0, pl.format("已过履约期限仍未确认履约的承诺{}项", overdue))], "、")
            .replace("", None),
            pl.when(still > 0).then(pl.format("未到期的信用承诺{}项", still))
            .otherwise(pl.lit("无信用承诺记录")))
        en = pl.coalesce(_join([
            _if(breached > 0, pl.concat_str([pl.format("{} credit commitment(s) breached", breached),
                                             _if(recent > 0, pl.format(" ({} in the last year)", recent))],
                                            ignore_nulls=True)),
            _if(overdue > 0, pl.format("{} commitment(s) past their due day, not confirmed kept", overdue))],
            "; ").replace("", None),
            pl.when(still > 0).then(pl.format("{} open credit commitment(s)", still))
            .otherwise(pl.lit("no credit commitment on file")))
        return zh, en
    if code == CLEAN:
        return pl.lit("无违法违规记录"), pl.lit("no adverse record on file")
    if code == ASSOCIATIONS:
        count, adverse = i("associations__count"), i("associations__adverse_365d")
        dishonest = i("associations__dishonest_active") > 0
        zh = pl.concat_str([pl.format("同一法定代表人的关联企业{}家", count),
                            _if(adverse > 0, pl.format("，近1年不良事件{}起", adverse)),
                            _if(dishonest, "，其中有企业列入严重违法失信名单")], ignore_nulls=True)
        en = pl.concat_str([pl.format("{} enterprise(s) share its legal representative", count),
                            _if(adverse > 0,
                                pl.format(", with {} adverse event(s) in the last year", adverse)),
                            _if(dishonest, "; one is on the dishonesty list")], ignore_nulls=True)
        return zh, en
    if code == OTHER:
        return pl.lit("其他因素合计（含检查人员因素，已按中性值计）"), pl.lit(
            "other factors together (inspector effects held neutral)")
    return None


_AGE_ZH = ((365, "成立不足1年"), (1095, "成立1至3年"), (3650, "成立3至10年"))
_AGE_EN = ((365, "under 1 year old"), (1095, "1 to 3 years old"), (3650, "3 to 10 years old"))


def _age_words(frame: pl.DataFrame, lang: str) -> pl.Expr:
    if "profile__age_days" not in frame.columns:
        return pl.lit(None, dtype=pl.String)
    age = pl.col("profile__age_days").cast(pl.Float64)
    steps = _AGE_ZH if lang == "zh" else _AGE_EN
    expr = pl.when(age.is_null()).then(pl.lit("成立日期不详" if lang == "zh" else "founding date unknown"))
    for limit, words in steps:
        expr = expr.when(age < limit).then(pl.lit(words))
    return expr.otherwise(pl.lit("成立10年以上" if lang == "zh" else "over 10 years old"))


def _label_expr(frame: pl.DataFrame, code: str, lang: str) -> pl.Expr:
    if code not in frame.columns:
        return pl.lit(None, dtype=pl.String)
    col = pl.col(code).cast(pl.String)
    labels = {v: _VALUE_LABELS[code](v, lang) for v in frame[code].cast(pl.String).drop_nulls().unique()}
    return col.replace_strict(labels, default=col, return_dtype=pl.String) if labels else col


BASELINE_FACTORS = ("profile__sector", "profile__age_days", "profile__registered_capital",
                    "profile__district")
_DRIVEN = "_baseline_driven"


def _baseline_texts(frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """"同类企业基准风险：零售、成立不足1年": the profile facts that raised the risk (``_c_<feature>`` > 0),
    and a note when the baseline outweighs the own record (``_baseline_driven``)."""
    out = []
    for lang in ("zh", "en"):
        words = {"profile__sector": _label_expr(frame, "profile__sector", lang),
                 "profile__age_days": _age_words(frame, lang),
                 "profile__district": _label_expr(frame, "profile__district", lang)}
        if "profile__registered_capital" in frame.columns:
            cap = pl.col("profile__registered_capital").cast(pl.Float64)
            words["profile__registered_capital"] = (
                pl.format("注册资本{}万元", cap.round(0).cast(pl.Int64)) if lang == "zh"
                else pl.format("registered capital {} CNY", (cap * 10_000).round(0).cast(pl.Int64)))
        parts = [_if(pl.col(f"_c_{f}") > 0, words[f]) for f in BASELINE_FACTORS
                 if f in words and f"_c_{f}" in frame.columns]
        listed = pl.coalesce(_join(parts, "、" if lang == "zh" else ", ").replace("", None),
                             pl.lit("不高于一般水平" if lang == "zh" else "not above the average"))
        head = "同类企业基准风险：" if lang == "zh" else "baseline risk of similar enterprises: "
        note = ("（本等级主要由此决定，而非企业自身记录）" if lang == "zh"
                else " (the grade rests mainly on this, not on the enterprise's own record)")
        driven = pl.col(_DRIVEN) if _DRIVEN in frame.columns else pl.lit(False)
        out.append(pl.concat_str([pl.lit(head), listed, _if(driven, note)], ignore_nulls=True))
    return out[0], out[1]


def group_texts(features: pl.DataFrame, feature_names: Sequence[str], contrib: np.ndarray, groups: Groups,
                code: str, rows: np.ndarray, *, catalog: Mapping[str, Any] | None = None
                ) -> tuple[pl.Series, pl.Series]:
    """The Chinese and English sentences of reason ``code`` for ``rows`` of ``features``."""
    sub = features[rows] if rows.size else features.clear()
    if code == BASELINE:
        names = list(feature_names)
        extra = {f"_c_{f}": contrib[rows, names.index(f)] for f in BASELINE_FACTORS if f in names}
        extra[_DRIVEN] = baseline_driven(groups)[rows]
        sub = sub.with_columns([pl.Series(k, v) for k, v in extra.items()])
        zh, en = _baseline_texts(sub)
    else:
        texts = _texts(sub, code)
        if texts is None:  # a feature family of its own: the catalog's sentence with its value
            vals = sub[code] if code in sub.columns else pl.Series(code, [None] * sub.height)
            if vals.dtype == pl.Categorical or isinstance(vals.dtype, pl.Enum):
                vals = vals.cast(pl.String)
            spec = _spec_texts(catalog if catalog is not None else default_catalog(), code)
            return _texts_for(vals, *spec, code)
        zh, en = texts
    out = sub.with_columns(zh.alias("_zh"), en.alias("_en"))  # with_columns: literals fill every row
    return out["_zh"].alias("zh"), out["_en"].alias("en")

