"""The blend target (issue 11): one booster whose margin is a weighted sum of the horizon model's and
the inspection model's calibrated log-odds, the weight set by how much of the horizon label was looked at.

The two targets fail in opposite ways. The horizon label (any adverse outcome within a year) has a
row for every enterprise and month, so it learns the broad ranking well, but it saturates at the top
(a restaurant re-inspected every few weeks has an adverse finding within the year whatever its
record) and it learns who gets looked at. The inspection label (what a visit found) is what a grade
estimates, but it has one row per visit, about a hundredth as many. Their weighted log-odds ranks
better than either on Boston's and the synthetic city's backtests (README, "Real data").

``merge_boosters`` writes the two LightGBM models as one: trees of both, each tree's leaf values
scaled by its model's weight, split features renumbered onto one shared column list. The result is
an ordinary booster, so scoring, TreeSHAP reasons, saving and MLflow work on it unchanged, and its
contributions are exactly the weighted sum of the two models' contributions. Training uses it for
bagging too (``TrainConfig.bags``: one target's boosters of several seeds, each weighted equally).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from models.artifact import CreditModel
from models.booster import calibrate_on
from models.evaluate import auc
from models.train_config import CHOOSE, LOOKED
from riskengine.core.errors import ModelError

if TYPE_CHECKING:
    import lightgbm as lgb

# The horizon model's weight by default (TrainConfig.blend_weight == LOOKED): the share of the
# horizon target's training rows (enterprise-months) with an inspection or sampling test within the
# horizon, rounded down to a tenth and bounded to WEIGHT_BOUNDS. The horizon label reads "adverse
# outcome found within a year"; it measures what a visit would find only where somebody looked, and
# elsewhere counts the enterprise as clean. So it is worth as much as the share looked at: Boston's
# restaurants are mostly inspected within a year (75 % of enterprise-months, weight 0.7), the
# synthetic city's enterprises mostly not (14 %, weight 0.2). On both, this weight's grades beat the
# even blend's on every seed tried (README, "Real data"). The AUC of held-out visits is too flat
# across weights (a few thousandths on a few hundred visits) to choose by it alone; ``choose`` still
# does, on request.
# Each model keeps at least a fifth: a blend that drops a model on thin evidence loses what the other
# does badly (on Boston the inspection model alone flattens at the top, the horizon model alone learns
# who gets looked at). Either model alone is its own target (--target horizon or inspection).
WEIGHT_BOUNDS = (0.2, 0.8)
# Without evidence (no observed share, or too few judged visits to choose): the even blend.
EVEN = 0.5
# With TrainConfig.blend_weight CHOOSE the horizon model's weight is chosen from these by the AUC on
# the calibration months' visits; the order breaks ties towards an even blend.
WEIGHT_GRID = (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8)
# Fewer random (双随机) visits than this in the calibration months: judge on every visit there.
MIN_RANDOM_VISITS = 200
# Fewer judged visits, or fewer of either outcome, than these: no evidence, the even blend (0.5).
MIN_JUDGED_VISITS = 200
MIN_JUDGED_OUTCOMES = 20

_TREE = re.compile(r"^Tree=\d+$", re.MULTILINE)


def choose_weight(y: np.ndarray, horizon_logodds: np.ndarray, inspection_logodds: np.ndarray
                  ) -> tuple[float, dict[str, float]]:
    """The horizon model's weight w maximising the AUC of ``w * horizon + (1 - w) * inspection`` on
    held-out visits ``y``, and the AUC of every weight tried (``WEIGHT_GRID``)."""
    tried = {f"{w:.1f}": auc(y, w * horizon_logodds + (1 - w) * inspection_logodds) for w in WEIGHT_GRID}
    finite = {w: a for w, a in tried.items() if np.isfinite(a)}
    if not finite:
        return EVEN, tried
    best = max(finite.values())
    weight = next(float(w) for w in finite if finite[w] == best)  # grid order: the first best
    return weight, tried


def looked_weight(observed_share: float) -> float:
    """The LOOKED rule: the share of enterprise-months looked at within the horizon, rounded down to
    a tenth (the grid ``choose`` tries; down, towards the inspection model, whose label is what a
    grade estimates) and bounded to ``WEIGHT_BOUNDS``; the even blend when the share is unknown."""
    if not np.isfinite(observed_share):
        return EVEN
    low, high = WEIGHT_BOUNDS
    return min(max(math.floor(float(observed_share) * 10 + 1e-9) / 10, low), high)


def _header_fields(header: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in header.splitlines() if "=" in line)


def merge_boosters(parts: Sequence[tuple[lgb.Booster, Sequence[str], float]],
                   names: Sequence[str]) -> lgb.Booster:
    """One booster over the columns ``names`` whose raw margin is ``sum(weight * part's raw margin)``.

    Each part is (booster, its feature names in order, weight); every name of a part must be in
    ``names``. Single-output (binary) boosters only.
    """
    import lightgbm as lgb  # noqa: PLC0415 - heavy
    index = {n: i for i, n in enumerate(names)}
    infos = ["none"] * len(names)
    monotone = ["0"] * len(names)  # a positive weighted sum of monotone models keeps the direction
    blocks: list[str] = []
    header = ""
    for booster, part_names, weight in parts:
        missing = [n for n in part_names if n not in index]
        if missing:
            raise ModelError(f"blend: features {missing} are not among the blended model's columns")
        text = booster.model_to_string()
        start, end = text.find("\nTree="), text.find("end of trees")
        if start < 0 or end < 0:
            raise ModelError("blend: a component model has no trees")
        fields = _header_fields(text[:start])
        if fields.get("num_tree_per_iteration", "1") != "1":
            raise ModelError("blend: only single-output boosters can be blended")
        for name, info in zip(part_names, fields["feature_infos"].split(" "), strict=True):
            if infos[index[name]] == "none":
                infos[index[name]] = info
        for name, sign in zip(part_names, fields.get("monotone_constraints", "").split(), strict=False):
            if sign != "0":
                monotone[index[name]] = sign
        remap = [index[n] for n in part_names]
        for block in _TREE.split(text[start:end])[1:]:
            blocks.append(_scaled_tree(block, remap, weight))
        if not header or "monotone_constraints=" in text[:start]:
            header = text[:start]
    lines = []
    for line in header.strip("\n").splitlines():
        key = line.split("=", 1)[0]
        if key == "tree_sizes":
            continue  # optional; the loader reads the trees in order without it
        if key == "max_feature_idx":
            line = f"max_feature_idx={len(names) - 1}"
        elif key == "feature_names":
            line = "feature_names=" + " ".join(names)
        elif key == "monotone_constraints":
            line = "monotone_constraints=" + " ".join(monotone)
        elif key == "feature_infos":
            line = "feature_infos=" + " ".join(infos)
        lines.append(line)
    trees = "".join(f"Tree={k}{block}" for k, block in enumerate(blocks))
    # No parameters section: the components' (monotone constraints, for one) fit their own columns.
    model = ("\n".join(lines) + "\n\n" + trees
             + "end of trees\n\nfeature_importances:\n\npandas_categorical:null\n")
    return lgb.Booster(model_str=model)


def _scaled_tree(block: str, remap: Sequence[int], weight: float) -> str:
    out = []
    for line in block.split("\n"):
        key, _, value = line.partition("=")
        if key == "split_feature" and value:
            line = "split_feature=" + " ".join(str(remap[int(v)]) for v in value.split(" "))
        elif key in ("leaf_value", "internal_value") and value:
            line = f"{key}=" + " ".join(repr(float(v) * weight) for v in value.split(" "))
        out.append(line)
    return "\n".join(out)


def _logodds_map(model: CreditModel) -> tuple[float, float]:
    """(a, b) with the model's calibrated log-odds = a * raw margin + b (Platt), else the raw margin."""
    cal = model.calibrator
    return (cal.slope, cal.intercept) if cal.method == "platt" else (1.0, 0.0)


def blend_models(horizon: CreditModel, inspection: CreditModel, judged: pl.DataFrame, visits: pl.DataFrame,
                 calibration: str, seed: int, weight: float | str = LOOKED, observed_share: float = np.nan
                 ) -> tuple[CreditModel, dict[str, Any]]:
    """The blended model of two fitted, calibrated component models, and what was chosen.

    ``weight`` is the horizon model's (the inspection model's is 1 - weight): a number; ``LOOKED``
    (``looked_weight`` of ``observed_share``, the share of the horizon model's training rows looked at
    within the horizon); or ``CHOOSE``, from ``WEIGHT_GRID`` by the AUC on the judged visits. Either
    way the AUC of every weight of the grid is reported (``weight_auc``), so a bureau sees how flat it
    is on its own visits.

    ``visits`` are the inspection target's calibration months, after both models' training rows (and
    out of time for the horizon model, whose fit months end a horizon earlier). ``judged`` holds each
    enterprise's first visit there with its features as of the first calibration month, as a grade
    set then is used for the following months: its random (双随机) visits where there are
    ``MIN_RANDOM_VISITS`` of both outcomes, else all of them, choose the weight with the nuisance
    features neutral (as grades are scored). All ``visits`` then calibrate the merged margin (visits
    as they happened, as each component's calibration does).
    """
    random = judged.filter(pl.col("observed_random"))
    population = "visits"
    if random.height >= MIN_RANDOM_VISITS and random["label"].n_unique() == 2:
        judged, population = random, "random"
    y = judged["label"].to_numpy().astype(int)
    (a_h, b_h), (a_i, b_i) = _logodds_map(horizon), _logodds_map(inspection)
    best, tried = choose_weight(y, a_h * horizon.predict_raw(judged) + b_h,
                                a_i * inspection.predict_raw(judged) + b_i)
    if weight == LOOKED:
        weight = looked_weight(observed_share)
        low, high = WEIGHT_BOUNDS
        rule = (f"looked: {observed_share:.1%} of the horizon model's enterprise-months had a visit within "
                f"the horizon, rounded down to a tenth within {low}-{high}" if np.isfinite(observed_share)
                else "the even blend: the share looked at is unknown")
    elif weight == CHOOSE:
        weight, rule = best, "chosen by AUC on the judged visits"
        if y.size < MIN_JUDGED_VISITS or min(int(y.sum()), int(y.size - y.sum())) < MIN_JUDGED_OUTCOMES:
            # A few dozen visits rank any weight by chance: no evidence, so neither model is dropped.
            weight, rule = EVEN, "the even blend: too few judged visits to choose"
    else:
        weight, rule = float(weight), "fixed"
    names = [*inspection.feature_names,
             *(n for n in horizon.feature_names if n not in inspection.feature_names)]
    parts = [(m.booster, m.feature_names, w * a) for m, w, a in
             ((horizon, weight, a_h), (inspection, 1.0 - weight, a_i)) if w > 0]
    merged = CreditModel(
        merge_boosters(parts, names), names,
        categorical=[n for n in names if n in {*horizon.categorical, *inspection.categorical}],
        categories={**horizon.categories, **inspection.categories},
        neutral={**horizon.neutral, **inspection.neutral},
    )
    merged.calibrator = calibrate_on(merged, visits, calibration, seed)
    info = {"target": "blend", "weight_horizon": weight, "weight_rule": rule,
            "observed_share": float(observed_share) if np.isfinite(observed_share) else None,
            "weight_population": population, "weight_rows": int(judged.height), "weight_auc": tried,
            "best_iteration": merged.booster.num_trees()}
    return merged, info
