"""SHAP contributions summed into reasons (``models.reasons``' module docstring): the check that they
add up, the groups each feature's contribution goes to, and which grades rest on the baseline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from features import FEATURES
from models.grading import BASELINE_CAP_RULE, HARD_RULES
from riskengine.core.errors import ModelError

TOP_K = 3
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


def check_shape(contrib: np.ndarray, rows: int, feature_names: Sequence[str]) -> None:
    """Raise ``ModelError`` unless ``contrib`` is rows × (features + 1), the bias last."""
    expected = (rows, len(feature_names) + 1)
    if contrib.shape != expected:
        raise ModelError(f"contributions have shape {contrib.shape}; expected ({expected[0]}, {expected[1]})")


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


def numeric(frame: pl.DataFrame, name: str) -> pl.Expr:
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
    check_shape(contrib, n, names)
    if catalog is None:
        catalog = default_catalog()
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
                pl.sum_horizontal([numeric(features, c) for c in ADVERSE_PARTS.get(g, ())] or [pl.lit(0.0)])
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
            terms = [numeric(parts, f"{SEVERITY_PART}{t}") for t in tables] or [pl.lit(0.0)]
            cols.append(pl.sum_horizontal(terms).alias(g))
        return parts.select(cols).to_numpy().astype(np.float64)
    return features.select([
        pl.sum_horizontal([numeric(features, c) * w for c, w in SEVERITY_PROXY.get(g, ())] or [pl.lit(0.0)])
        .alias(g)
        for g in RECORD_GROUPS]).to_numpy().astype(np.float64)



def baseline_driven(groups: Groups) -> np.ndarray:
    """True where the baseline raised the risk more than every own-record reason together did."""
    base = groups.column(BASELINE)
    own_cols = [i for i, k in enumerate(groups.kinds()) if k == OWN_RECORD]
    own = np.clip(groups.values[:, own_cols], 0, None).sum(axis=1)
    return (base > 0) & (base > own)


def _is_nuisance(catalog: Mapping[str, Any] | None, code: str) -> bool:
    spec = (catalog or {}).get(code)
    if spec is None:
        return False
    if isinstance(spec, Mapping):
        return bool(spec.get("nuisance", False))
    return bool(getattr(spec, "nuisance", False))


def default_catalog() -> Mapping[str, Any]:
    """The feature catalog (``features.FEATURES``)."""
    return FEATURES
