"""Reasons for a grade an officer can defend: SHAP contributions grouped by the records behind them.

Bulk explanations use LightGBM's exact TreeSHAP (``pred_contrib``, via
``CreditModel.contributions``): each row's contributions plus the bias must add up to the raw
margin, and we check that before trusting them.

The model sees many overlapping features (failed inspections over 90, 365 and 1095 days, a failure
rate, a time-decayed severity index over every table …). An officer cannot defend "an index of 0.9"
or "12 complaints in 90 days" beside "20 in 365 days", so contributions are summed into *reasons*
(issue 18), each of one kind:

* ``own_record`` — what the enterprise did or what was found, one reason per record family
  (inspections, sampling tests, penalties, recalls, complaints, licences). The decayed severity
  index is split over the families by each family's share of the index (``features.severity``
  computes the parts exactly from the lake; a proxy from the window counts stands in without it),
  and the 365-day adverse count by its parts; with nothing on record both go to ``clean_record``.
  The sentence counts the records ("近3年抽检不合格2次（其中高危害1次）"); the records themselves
  (evidence) are looked up in the lake by ``riskengine.workflows.explain``.
* ``baseline`` — enterprises like it: sector, age, size, district, in one line
  ("同类企业基准风险：零售、成立不足1年"), which says so when it outweighs the own record.
* ``associated`` — enterprises sharing its legal representative (not its own record).
* ``rule`` — hard rules and the policy's baseline cap, with a null contribution (they act outside
  the model).

Inspector strictness (nuisance) and anything the catalog does not place go to ``other``. Own
record + associated + baseline + other + the bias add up to the raw margin for every row.
The grades frame keeps at most ``TOP_K`` own-record reasons that raised the risk, then rules, then
associated and baseline lines when they raised it: own-record reasons first (CONTRACT §3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from features import FEATURES
from models.grading import BASELINE_CAP_RULE, HARD_RULES
from riskengine.core.contract import REASONS_DTYPE, district_label, sector_label
from riskengine.core.errors import ModelError

TOP_K = 3
REASON_DTYPE = REASONS_DTYPE  # the contract's reasons column type
# |sum of contributions − raw margin| allowed (float64 rounding over a few hundred trees).
SUM_TOLERANCE = 1e-6


def check_contributions(contrib: np.ndarray, raw: np.ndarray, tol: float = SUM_TOLERANCE) -> None:
    """Raise ``ModelError`` unless every row of ``contrib`` (features + bias) sums to ``raw``."""
    contrib = np.asarray(contrib, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    if contrib.ndim != 2 or contrib.shape[0] != raw.shape[0]:
        raise ModelError(f"contributions have shape {contrib.shape}; expected ({raw.shape[0]}, n_features+1)")
    gap = np.abs(contrib.sum(axis=1) - raw)
    limit = tol * np.maximum(1.0, np.abs(raw))
    bad = np.flatnonzero(~(gap <= limit))
    if bad.size:
        raise ModelError(
            f"SHAP contributions do not add up to the raw score for {bad.size} of {raw.shape[0]} rows "
            f"(largest gap {float(np.nanmax(gap)):.3g} at row {int(bad[0])}); the explanation cannot be "
            "trusted — is the model's booster the one that produced the scores?")


def top_positive(contrib: np.ndarray, k: int = TOP_K, exclude: Iterable[int] = ()
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest positive contributions per row, largest first.

    ``contrib`` holds feature columns only (no bias). Returns ``(index, value, valid)``, each n × k;
    ``valid`` is False where a row has fewer than k positive contributions (or the column is excluded).
    """
    values = np.array(contrib, dtype=np.float64, copy=True)
    n, m = values.shape
    excluded = list(exclude)
    if excluded:
        values[:, excluded] = -np.inf
    k = min(k, m)
    if n == 0 or k == 0:
        empty = np.zeros((n, k))
        return empty.astype(np.int64), empty, empty.astype(bool)
    part = np.argpartition(-values, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    part_vals = np.take_along_axis(values, part, axis=1)
    order = np.argsort(-part_vals, axis=1, kind="stable")
    index = np.take_along_axis(part, order, axis=1)
    value = np.take_along_axis(part_vals, order, axis=1)
    valid = value > 0
    return index, value, valid


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



# --- reason groups --------------------------------------------------------------------------------

OWN_RECORD, BASELINE_KIND, ASSOCIATED, RULE = "own_record", "baseline", "associated", "rule"
KINDS = (OWN_RECORD, BASELINE_KIND, ASSOCIATED, RULE)
RECORD_GROUPS = ("inspections", "sampling", "penalties", "recalls", "complaints", "licenses", "lists",
                 "commitments")
"""Own-record reasons by record family (the feature family of the same name)."""
CLEAN = "clean_record"
BASELINE = "baseline"
ASSOCIATIONS = "associations"
OTHER = "other"
BASELINE_FAMILIES = ("profile",)
SEVERITY_INDEX = "severity__index"
SEVERITY_ADVERSE = "severity__adverse_365d"
# Which group each table's part of the severity index belongs to (features.severity.TABLES).
SEVERITY_PART = "severity_part__"
TABLE_GROUP = {"inspections": "inspections", "sampling_tests": "sampling", "penalties": "penalties",
               "recalls": "recalls", "complaints": "complaints", "licenses": "licenses"}
# The parts of the 365-day adverse count (features.severity.ADVERSE_365D) by group.
ADVERSE_PARTS = {"inspections": ("inspections__fail_365d",), "sampling": ("sampling__fail_365d",),
                 "penalties": ("penalties__moderate_365d", "penalties__serious_365d"),
                 "recalls": ("recalls__count_365d",), "licenses": ("licenses__revoked_365d",)}
# Without the lake, the index's parts are estimated from window counts with the index's own weights
# (features.severity: failed inspection 3, conditional 1, failed test by hazard, penalty 3 + 4 on the
# dishonesty list, recall 2 (+2 ordered, +2 high hazard), complaint 0.2 (+0.8 substantiated),
# revoked licence 5), undecayed.
SEVERITY_PROXY: dict[str, tuple[tuple[str, float], ...]] = {
    "inspections": (("inspections__fail_1095d", 3.0), ("inspections__conditional_1095d", 1.0)),
    "sampling": (("sampling__hazard_weighted_fail_1095d", 1.0),),
    "penalties": (("penalties__count_1095d", 3.0), ("penalties__dishonest_active", 4.0)),
    "recalls": (("recalls__count_1095d", 2.0), ("recalls__ordered_1095d", 2.0),
                ("recalls__high_hazard_1095d", 2.0)),
    "complaints": (("complaints__count_365d", 0.2), ("complaints__substantiated_365d", 0.8)),
    "licenses": (("licenses__revoked", 5.0),),
}
# An adverse record on file (CONTRACT §2's adverse outcomes, over the windows the features keep):
# what the policy's baseline cap asks for before the baseline alone may push a grade past its cap.
ADVERSE_RECORD = ("inspections__fail_1095d", "inspections__findings_critical_1095d", "sampling__fail_1095d",
                  "penalties__moderate_active", "penalties__serious_active", "penalties__moderate_365d",
                  "penalties__serious_365d", "penalties__dishonest_active", "recalls__count_1095d",
                  "licenses__revoked", "lists__serious_now", "commitments__breached_365d")


def cap_eligible(features: pl.DataFrame, groups: Groups) -> np.ndarray:
    """Rows the policy's baseline cap may lower: the baseline drives the grade and there is no adverse
    record on file."""
    return baseline_driven(groups) & ~adverse_record(features)


def adverse_record(features: pl.DataFrame) -> np.ndarray:
    """True where the enterprise has an adverse record on file (``ADVERSE_RECORD``); all True when the
    frame has none of those columns (nothing to judge by: no cap)."""
    cols = [c for c in ADVERSE_RECORD if c in features.columns]
    if not cols:
        return np.ones(features.height, dtype=bool)
    return features.select(pl.any_horizontal([pl.col(c).cast(pl.Float64).fill_null(0) > 0 for c in cols])
                           ).to_series().fill_null(False).to_numpy()


def _family(catalog: Mapping[str, Any] | None, code: str) -> str | None:
    spec = (catalog or {}).get(code)
    family = spec.get("family") if isinstance(spec, Mapping) else getattr(spec, "family", None)
    if family is None and "__" in code:
        family = code.split("__", 1)[0]
    return family


def group_of(code: str, catalog: Mapping[str, Any] | None, nuisance: Iterable[str] = ()) -> str:
    """The reason group a feature's contribution goes to (severity columns are split: see below)."""
    if code in set(nuisance) or _is_nuisance(catalog, code):
        return OTHER
    family = _family(catalog, code)
    if family in RECORD_GROUPS:
        return family
    if family in BASELINE_FAMILIES:
        return BASELINE
    if family == ASSOCIATIONS:
        return ASSOCIATIONS
    if family == "severity":
        return CLEAN if code in (SEVERITY_INDEX, SEVERITY_ADVERSE) else OTHER
    return code  # a feature family the explanations do not know yet: its own reason, worded by the catalog


def reason_kind(code: str) -> str:
    """The kind of a reason by its code: baseline, associated, rule or own record (grades stored
    before reasons were grouped carry feature codes: ``profile__*`` is baseline there)."""
    if code == BASELINE or code.split("__", 1)[0] in BASELINE_FAMILIES:
        return BASELINE_KIND
    if code == ASSOCIATIONS or code.startswith(f"{ASSOCIATIONS}__"):
        return ASSOCIATED
    if code in _rule_codes() or code == BASELINE_CAP_RULE:
        return RULE
    return OWN_RECORD


def _rule_codes() -> set[str]:
    return {r.id for r in HARD_RULES}


def _num(frame: pl.DataFrame, name: str) -> pl.Expr:
    """A feature column as a float with nulls as 0 (0 where the frame lacks it)."""
    if name in frame.columns:
        return pl.col(name).cast(pl.Float64).fill_null(0.0)
    return pl.lit(0.0)


@dataclass
class Groups:
    """Contributions summed by reason: ``values[:, i]`` belongs to ``codes[i]``; ``base`` is the bias.

    For every row ``values.sum(axis=1) + base`` equals the model's raw margin.
    """

    codes: list[str]
    values: np.ndarray
    base: np.ndarray

    def column(self, code: str) -> np.ndarray:
        return self.values[:, self.codes.index(code)]

    def kinds(self) -> list[str]:
        return [OTHER if c == OTHER else reason_kind(c) for c in self.codes]


def _split(total: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spread ``total`` (n) over columns by ``weights`` (n × k, ≥ 0); rows of zero weight give nothing."""
    w = np.clip(np.nan_to_num(weights, nan=0.0), 0.0, None)
    s = w.sum(axis=1, keepdims=True)
    share = np.divide(w, s, out=np.zeros_like(w), where=s > 0)
    return share * total[:, None]


def group_contributions(
    features: pl.DataFrame,
    feature_names: Sequence[str],
    contrib: np.ndarray,
    *,
    catalog: Mapping[str, Any] | None = None,
    nuisance: Iterable[str] = (),
    severity_parts: pl.DataFrame | None = None,
) -> Groups:
    """Sum a contribution matrix (n × (features + 1), bias last) into reason groups.

    ``severity_parts`` (aligned with ``features``' rows, columns ``severity_part__<table>``) splits the
    severity index exactly; without it ``SEVERITY_PROXY`` estimates the split from window counts.
    """
    names = list(feature_names)
    n = features.height
    if contrib.shape != (n, len(names) + 1):
        raise ModelError(f"contributions have shape {contrib.shape}; expected ({n}, {len(names) + 1})")
    if catalog is None:
        catalog = _catalog()
    nuisance = set(nuisance)
    extra = [g for g in dict.fromkeys(group_of(c, catalog, nuisance) for c in names)
             if g not in (*RECORD_GROUPS, CLEAN, ASSOCIATIONS, BASELINE, OTHER)]
    codes = [*RECORD_GROUPS, CLEAN, *extra, ASSOCIATIONS, BASELINE, OTHER]
    at = {c: i for i, c in enumerate(codes)}
    values = np.zeros((n, len(codes)))
    record_idx = [at[g] for g in RECORD_GROUPS]
    for j, code in enumerate(names):
        col = np.asarray(contrib[:, j], dtype=np.float64)
        if code == SEVERITY_INDEX and code not in nuisance:
            weights = _severity_weights(features, severity_parts)
        elif code == SEVERITY_ADVERSE and code not in nuisance:
            weights = features.select([
                pl.sum_horizontal([_num(features, c) for c in ADVERSE_PARTS.get(g, ())] or [pl.lit(0.0)])
                .alias(g) for g in RECORD_GROUPS]).to_numpy().astype(np.float64)
        else:
            values[:, at[group_of(code, catalog, nuisance)]] += col
            continue
        spread = _split(col, weights)
        values[:, record_idx] += spread
        nothing = ~(np.clip(np.nan_to_num(weights, nan=0.0), 0.0, None).sum(axis=1) > 0)
        values[:, at[CLEAN]] += np.where(nothing, col, 0.0)  # rows with nothing on record
    return Groups(codes, values, np.asarray(contrib[:, -1], dtype=np.float64))


def _severity_weights(features: pl.DataFrame, parts: pl.DataFrame | None) -> np.ndarray:
    """n × len(RECORD_GROUPS): each group's part of the severity index (exact) or its proxy."""
    if parts is not None:
        if parts.height != features.height:
            raise ModelError(f"severity parts have {parts.height} rows; the features {features.height}")
        cols = []
        for g in RECORD_GROUPS:
            tables = [t for t, gg in TABLE_GROUP.items() if gg == g]
            terms = [_num(parts, f"{SEVERITY_PART}{t}") for t in tables] or [pl.lit(0.0)]
            cols.append(pl.sum_horizontal(terms).alias(g))
        return parts.select(cols).to_numpy().astype(np.float64)
    return features.select([
        pl.sum_horizontal([_num(features, c) * w for c, w in SEVERITY_PROXY.get(g, ())] or [pl.lit(0.0)])
        .alias(g)
        for g in RECORD_GROUPS]).to_numpy().astype(np.float64)


# --- sentences ------------------------------------------------------------------------------------


def _i(frame: pl.DataFrame, name: str) -> pl.Expr:
    return _num(frame, name).round(0).cast(pl.Int64)


def _join(parts: list[pl.Expr], sep: str) -> pl.Expr:
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
        fine = _num(frame, "penalties__fine_cny_active")
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


def baseline_driven(groups: Groups) -> np.ndarray:
    """True where the baseline raised the risk more than every own-record reason together did."""
    base = groups.column(BASELINE)
    own_cols = [i for i, k in enumerate(groups.kinds()) if k == OWN_RECORD]
    own = np.clip(groups.values[:, own_cols], 0, None).sum(axis=1)
    return (base > 0) & (base > own)


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
            return _texts_for(vals, *_spec_texts(catalog if catalog is not None else _catalog(), code), code)
        zh, en = texts
    out = sub.with_columns(zh.alias("_zh"), en.alias("_en"))  # with_columns: literals fill every row
    return out["_zh"].alias("zh"), out["_en"].alias("en")


_LONG_SCHEMA = {"_row": pl.Int64, "_pos": pl.Int32, "code": pl.String, "contribution": pl.Float64,
                "text_zh": pl.String, "text_en": pl.String}


def build_reasons(
    features: pl.DataFrame,
    feature_names: Sequence[str],
    contrib: np.ndarray,
    *,
    catalog: Mapping[str, Any] | None = None,
    nuisance: Iterable[str] = (),
    fired: pl.Series | None = None,
    rule_texts: Mapping[str, tuple[str, str]] | None = None,
    k: int = TOP_K,
    severity_parts: pl.DataFrame | None = None,
    groups: Groups | None = None,
) -> pl.Series:
    """The ``reasons`` column: own-record reasons that raised the risk (largest first, at most ``k``),
    then the rules that fired, then the associated and the baseline line where they raised it.

    ``contrib`` is the model's n × (n_features + 1) contribution matrix (bias last), already checked
    with ``check_contributions``. ``fired`` is a List[String] column of rule ids per row (from
    ``grading.apply_grading``); ``rule_texts`` maps a rule id to its (zh, en) sentence.

    Built in long form (one row per reason), sorted by enterprise and position, then cut into
    per-enterprise lists by offsets — no per-row Python work; sentences are Polars expressions.
    """

    names = list(feature_names)
    n = features.height
    if contrib.shape != (n, len(names) + 1):
        raise ModelError(f"contributions have shape {contrib.shape}; expected ({n}, {len(names) + 1})")
    if catalog is None:
        catalog = _catalog()
    if groups is None:
        groups = group_contributions(features, names, contrib, catalog=catalog, nuisance=nuisance,
                                     severity_parts=severity_parts)
    kinds = groups.kinds()
    own = [i for i, kind in enumerate(kinds) if kind == OWN_RECORD]
    index, value, valid = top_positive(groups.values[:, own], k)
    parts: list[pl.DataFrame] = []

    def add(rows: np.ndarray, pos: np.ndarray | int, code: str, contribution: np.ndarray) -> None:
        if rows.size == 0:
            return
        zh, en = group_texts(features, names, contrib, groups, code, rows, catalog=catalog)
        parts.append(pl.DataFrame({
            "_row": rows.astype(np.int64),
            "_pos": np.broadcast_to(np.asarray(pos, dtype=np.int32), rows.shape),
            "code": pl.repeat(code, rows.size, eager=True, dtype=pl.String),
            "contribution": contribution, "text_zh": zh, "text_en": en}))

    for s in range(index.shape[1]):
        rows_s = np.flatnonzero(valid[:, s])
        codes_s = index[rows_s, s]
        for j in np.unique(codes_s):
            rows = rows_s[codes_s == j]
            add(rows, s, groups.codes[own[j]], value[rows, s])
    rules = list((rule_texts or {}).items())
    first_rule = index.shape[1]
    if fired is not None and rules:
        pairs = (pl.DataFrame({"_fired": fired}).with_row_index("_row")
                 .explode("_fired").drop_nulls("_fired"))
        lookup = pl.DataFrame({"_fired": [r for r, _ in rules],
                               "_pos": [first_rule + p for p in range(len(rules))],
                               "text_zh": [t[0] for _, t in rules], "text_en": [t[1] for _, t in rules]},
                              schema_overrides={"_pos": pl.Int32})
        parts.append(pairs.join(lookup, on="_fired", how="inner").select(
            pl.col("_row").cast(pl.Int64), "_pos", pl.col("_fired").alias("code"),
            pl.lit(None, dtype=pl.Float64).alias("contribution"), "text_zh", "text_en"))
    for p, code in enumerate((ASSOCIATIONS, BASELINE), start=first_rule + len(rules)):
        col = groups.column(code)
        rows = np.flatnonzero(col > 0)
        add(rows, p, code, col[rows])
    long = (pl.concat(parts) if parts else pl.DataFrame(schema=_LONG_SCHEMA)).sort("_row", "_pos")
    counts = np.bincount(long["_row"].to_numpy(), minlength=n) if long.height else np.zeros(n, np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), type=pa.int64())
    items = long.select(pl.struct("code", "contribution", "text_zh", "text_en").alias("r")).to_arrow()
    struct = items.column("r").combine_chunks() if items.num_rows else pa.array(
        [], type=items.schema.field("r").type)
    lists = pa.LargeListArray.from_arrays(offsets, struct)
    return pl.Series("reasons", lists).cast(REASON_DTYPE)


def explain_groups(
    features: pl.DataFrame,
    feature_names: Sequence[str],
    contrib: np.ndarray,
    *,
    catalog: Mapping[str, Any] | None = None,
    nuisance: Iterable[str] = (),
    severity_parts: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Every reason group of every row, with its kind, contribution and sentences (long form: ``_row``,
    ``code``, ``kind``, ``contribution``, ``text_zh``, ``text_en``), the bias per row, and whether the
    grade rests mainly on the baseline. The contributions plus the bias add up to the raw margin."""
    if catalog is None:
        catalog = _catalog()
    groups = group_contributions(features, feature_names, contrib, catalog=catalog, nuisance=nuisance,
                                 severity_parts=severity_parts)
    rows = np.arange(features.height)
    frames = []
    for code, kind in zip(groups.codes, groups.kinds(), strict=True):
        zh, en = group_texts(features, feature_names, contrib, groups, code, rows, catalog=catalog)
        frames.append(pl.DataFrame({"_row": rows.astype(np.int64), "code": [code] * rows.size,
                                    "kind": [kind] * rows.size, "contribution": groups.column(code),
                                    "text_zh": zh, "text_en": en},
                                   schema={"_row": pl.Int64, "code": pl.String, "kind": pl.String,
                                           "contribution": pl.Float64, "text_zh": pl.String,
                                           "text_en": pl.String}))
    return pl.concat(frames), groups.base, baseline_driven(groups)


def _is_nuisance(catalog: Mapping[str, Any] | None, code: str) -> bool:
    spec = (catalog or {}).get(code)
    if spec is None:
        return False
    if isinstance(spec, Mapping):
        return bool(spec.get("nuisance", False))
    return bool(getattr(spec, "nuisance", False))


def _catalog() -> Mapping[str, Any]:
    """The feature catalog (``features.FEATURES``)."""
    return FEATURES
