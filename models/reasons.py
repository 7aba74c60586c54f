"""Reasons for a grade: SHAP contributions → the top risk-raising facts, in Chinese and English.

Bulk explanations use LightGBM's exact TreeSHAP (``pred_contrib``, via
``CreditModel.contributions``): each row's contributions plus the bias must add up to the raw
margin, and we check that before trusting them. A reason is a feature with a *positive*
contribution (it raised the risk); we keep the three largest per enterprise, found with
``np.argpartition`` (no Python loop over rows). The sentence states the enterprise's actual value
through the feature catalog's template, e.g. "近365天抽检不合格2次 / 2 failed sampling tests in the
last 365 days"; templates are formatted once per distinct (feature, value) pair. Hard rules that
fire come first, with their own text and a null contribution (they act outside the model).

Nuisance features (inspector strictness) are never reasons: they say who inspected, not what the
enterprise did, and scoring holds them at a neutral value anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from features import FEATURES
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
) -> pl.Series:
    """The ``reasons`` column: hard rules that fired, then the top-k risk-raising features.

    ``contrib`` is the model's n × (n_features + 1) contribution matrix (bias last), already checked
    with ``check_contributions``. ``fired`` is a List[String] column of rule ids per row (from
    ``grading.apply_grading``); ``rule_texts`` maps a rule id to its (zh, en) sentence.

    Built in long form (one row per reason, at most n × (k + rules)), sorted by enterprise and
    position, then cut into per-enterprise lists by offsets — no per-row Python work.
    """

    names = list(feature_names)
    n = features.height
    if contrib.shape != (n, len(names) + 1):
        raise ModelError(f"contributions have shape {contrib.shape}; expected ({n}, {len(names) + 1})")
    if catalog is None:
        catalog = _catalog()
    nuisance_set = set(nuisance) | {c for c in names if _is_nuisance(catalog, c)}
    index, value, valid = top_positive(contrib[:, : len(names)], k,
                                       exclude=[i for i, c in enumerate(names) if c in nuisance_set])
    parts: list[pl.DataFrame] = []
    rules = list((rule_texts or {}).items())
    if fired is not None and rules:
        pairs = (pl.DataFrame({"_fired": fired}).with_row_index("_row")
                 .explode("_fired").drop_nulls("_fired"))
        lookup = pl.DataFrame({"_fired": [r for r, _ in rules], "_pos": list(range(len(rules))),
                               "text_zh": [t[0] for _, t in rules], "text_en": [t[1] for _, t in rules]},
                              schema_overrides={"_pos": pl.Int32})
        parts.append(pairs.join(lookup, on="_fired", how="inner").select(
            pl.col("_row").cast(pl.Int64), "_pos", pl.col("_fired").alias("code"),
            pl.lit(None, dtype=pl.Float64).alias("contribution"), "text_zh", "text_en"))
    for s in range(index.shape[1]):
        rows_s = np.flatnonzero(valid[:, s])
        codes_s = index[rows_s, s]
        for j in np.unique(codes_s):
            rows = rows_s[codes_s == j]
            code = names[j]
            vals = features[code].gather(rows)
            if vals.dtype == pl.Categorical or isinstance(vals.dtype, pl.Enum):
                vals = vals.cast(pl.String)
            zh, en = _texts_for(vals, *_spec_texts(catalog, code), code)
            parts.append(pl.DataFrame({
                "_row": rows.astype(np.int64), "_pos": np.full(rows.size, len(rules) + s, dtype=np.int32),
                "code": pl.repeat(code, rows.size, eager=True, dtype=pl.String),
                "contribution": value[rows, s], "text_zh": zh, "text_en": en}))
    long = (pl.concat(parts) if parts else pl.DataFrame(schema=_LONG_SCHEMA)).sort("_row", "_pos")
    counts = np.bincount(long["_row"].to_numpy(), minlength=n) if long.height else np.zeros(n, np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), type=pa.int64())
    items = long.select(pl.struct("code", "contribution", "text_zh", "text_en").alias("r")).to_arrow()
    struct = items.column("r").combine_chunks() if items.num_rows else pa.array(
        [], type=items.schema.field("r").type)
    lists = pa.LargeListArray.from_arrays(offsets, struct)
    return pl.Series("reasons", lists).cast(REASON_DTYPE)


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
