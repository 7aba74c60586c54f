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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from models.reason_groups import (
    ASSOCIATIONS,
    BASELINE,
    OWN_RECORD,
    TOP_K,
    Groups,
    baseline_driven,
    check_shape,
    default_catalog,
    group_contributions,
    top_positive,
)
from models.reason_texts import group_texts
from riskengine.core.contract import REASONS_DTYPE

REASON_DTYPE = REASONS_DTYPE  # the contract's reasons column type


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
    check_shape(contrib, n, names)
    if catalog is None:
        catalog = default_catalog()
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
        catalog = default_catalog()
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

