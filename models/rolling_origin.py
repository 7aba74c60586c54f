"""Rolling-origin validation inside the fit months: which feature set and tree size a target's
model uses, and which features it can learn from at all."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from features.families import FAMILIES
from features.inspections import RATES as INSPECTION_RATES
from models.artifact import CreditModel
from models.booster import quick_fit
from models.evaluate import auc
from models.train_config import TrainConfig

# Exposure counts (issue 11): how often someone looked, which measures the supervisor as much as the
# enterprise. The "exposure_free" feature set leaves them out and keeps what inspections found.
_EXPOSURE = re.compile(
    r"^inspections__(count|fail|conditional|random|targeted|complaint|follow_up|license)_(\d+d|ever)$"
    r"|^inspections__findings_(minor|serious|critical)_\d+d$|^inspections__days_since_last(_fail)?$"
    r"|^severity__(adverse_365d|index)$|^inspections__never_inspected$"
)
FEATURE_SETS = ("all", "exposure_free", "rates")
# "rates": of the inspection history only the decayed per-inspection rates (features.inspections).
_INSPECTION_HISTORY = re.compile(r"^(inspections|severity)__")
# Tree sizes the rolling-origin validation chooses from: (num_leaves, max_depth, min_data_in_leaf).
TREE_SIZES = ((7, 3, 200), (3, 2, 50))


def feature_set(names: Sequence[str], which: str) -> list[str]:
    """The model features of one candidate set (``FEATURE_SETS``)."""
    if which == "exposure_free":
        return [n for n in names if not _EXPOSURE.match(n)]
    if which == "rates":
        return [n for n in names if not _INSPECTION_HISTORY.match(n) or n in INSPECTION_RATES]
    return list(names)


def usable_features(frame: pl.DataFrame, names: Sequence[str], tables: Mapping[str, pl.LazyFrame],
                    catalog: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The features a model can learn from here, and why each other one is left out.

    A family whose table is absent or empty (a lake keeps an empty frame for every table its source
    did not have) is named once (``family:<name>``); a column that is empty or the same for every fit
    row carries nothing (optbinning and LightGBM fail or ignore it).
    """
    left_out: dict[str, str] = {}
    missing: dict[str, str] = {}
    for table in sorted(set(_FAMILY_TABLE.values())):
        if table not in tables:
            missing[table] = "absent"
        elif tables[table].head(1).collect().height == 0:
            missing[table] = "empty"
    kept: list[str] = []
    stats = frame.select(
        *[pl.col(n).drop_nulls().n_unique().alias(n) for n in names]).row(0, named=True) if names else {}
    for n in names:
        family = catalog[n].family
        if family in _FAMILY_TABLE and _FAMILY_TABLE[family] in missing:
            table = _FAMILY_TABLE[family]
            left_out[f"family:{family}"] = f"table {table} is {missing[table]}"
            continue
        if stats[n] <= 1:
            left_out[n] = "empty" if stats[n] == 0 else "the same value in every fit row"
            continue
        kept.append(n)
    return kept, left_out


# The event table behind each family (features.families): absent from a lake, the family goes.
_FAMILY_TABLE = {f.name: f.table for f in FAMILIES if f.table is not None}


@dataclass
class Candidate:
    """One configuration the rolling-origin validation tries."""

    target: str
    features: str
    tree: tuple[int, int, int]
    fold_auc: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)

    @property
    def mean_auc(self) -> float:
        finite = [a for a in self.fold_auc if math.isfinite(a)]
        return float(np.mean(finite)) if finite else math.nan

    def label(self) -> str:
        return f"{self.target}/{self.features}/leaves{self.tree[0]}"


def with_tree(cfg: TrainConfig, tree: tuple[int, int, int]) -> TrainConfig:
    return replace(cfg, num_leaves=tree[0], max_depth=tree[1], min_data_in_leaf=tree[2])


def rolling_folds(fit: Sequence[date], n_folds: int = 2, width: int = 2
                  ) -> list[tuple[list[date], list[date]]]:
    """Rolling origins over the fit months: train on the months before an origin, evaluate on the
    ``width`` months from it (a month's gap between, so no inspection row is on both sides)."""
    out = []
    months = list(fit)
    for k in range(n_folds, 0, -1):
        end = len(months) - (k - 1) * width
        start = end - width
        if start - 1 < 2:
            continue
        out.append((months[: start - 1], months[start:end]))
    return out


def choose_candidates(
    targets: Sequence[str],
    cfg: TrainConfig,
    fit_months: Mapping[str, Sequence[date]],
    data_of: Mapping[str, pl.DataFrame],
    proto_for: Callable[[str, str], tuple[CreditModel, list[int]]],
) -> tuple[dict[str, Candidate], list[dict[str, Any]]]:
    """Per target, the candidate (feature set, tree size) with the best mean AUC over the rolling
    origins of its fit months, and the log of every candidate tried. ``proto_for(target, set)`` gives
    an unfitted model with the set's columns and their monotone constraints."""
    chosen: dict[str, Candidate] = {}
    selection_log: list[dict[str, Any]] = []
    for t in targets:
        folds = rolling_folds(fit_months[t]) if cfg.select else []
        cands = [Candidate(t, fs, tree) for fs in FEATURE_SETS for tree in TREE_SIZES] if folds else []
        for cand in cands:
            proto, monotone = proto_for(t, cand.features)
            if not proto.feature_names:
                continue
            for train_months, eval_months in folds:
                tr = data_of[t].filter(pl.col("as_of").is_in(train_months))
                ev = data_of[t].filter(pl.col("as_of").is_in(eval_months))
                random = ev.filter(pl.col("observed_random"))
                # Judge on random visits where there are enough (what a grade estimates, unbiased by
                # who gets visited); every evaluation row otherwise.
                if random.height >= 200 and random["label"].n_unique() == 2:
                    ev = random
                if tr["label"].n_unique() < 2 or ev["label"].n_unique() < 2:
                    continue
                booster, rounds = quick_fit(with_tree(cfg, cand.tree), proto.feature_names, monotone,
                                             proto.categorical, proto, tr)
                p = booster.predict(proto.encode(ev), raw_score=True, num_iteration=rounds)
                cand.fold_auc.append(auc(ev["label"].to_numpy().astype(int), p))
                cand.rounds.append(rounds)
            selection_log.append({"candidate": cand.label(), "fold_auc": cand.fold_auc, "rounds": cand.rounds,
                                  "mean_auc": cand.mean_auc})
        scored = [c for c in cands if math.isfinite(c.mean_auc)]
        chosen[t] = max(scored, key=lambda c: c.mean_auc) if scored else Candidate(t, "all", TREE_SIZES[0])
    return chosen, selection_log
