"""Evaluation metrics for risk scores: ranking (AUC, PR-AUC, KS), calibration (Brier), the business
measure (capture at 10 %: the share of adverse outcomes found by inspecting the riskiest 10 %) and the
realized adverse rate per grade, which must rise strictly A < B < C < D.

Functions take plain arrays and return numbers or frames; printing belongs to the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from riskengine.core.contract import GRADES
from riskengine.core.errors import UsageError


def _arrays(y: Sequence[float] | np.ndarray, score: Sequence[float] | np.ndarray,
            weight: Sequence[float] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    s_arr = np.asarray(score, dtype=np.float64).ravel()
    w_arr = np.ones_like(y_arr) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
    if not (y_arr.shape == s_arr.shape == w_arr.shape):
        raise UsageError(f"labels, scores and weights must have the same length; got {y_arr.size}, "
                         f"{s_arr.size} and {w_arr.size}.")
    if y_arr.size and not np.isin(y_arr, (0.0, 1.0)).all():
        raise UsageError("labels must be 0 or 1.")
    return y_arr, s_arr, w_arr


def _both_classes(y: np.ndarray) -> bool:
    return y.size > 0 and 0 < y.sum() < y.size


def auc(y, score, weight=None) -> float:  # noqa: ANN001
    """Area under the ROC curve (NaN when only one class is present)."""
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415 - heavy
    y, s, w = _arrays(y, score, weight)
    return float(roc_auc_score(y, s, sample_weight=w)) if _both_classes(y) else math.nan


def pr_auc(y, score, weight=None) -> float:  # noqa: ANN001
    """Average precision (area under the precision-recall curve)."""
    from sklearn.metrics import average_precision_score  # noqa: PLC0415 - heavy
    y, s, w = _arrays(y, score, weight)
    return float(average_precision_score(y, s, sample_weight=w)) if _both_classes(y) else math.nan


def ks(y, score, weight=None) -> float:  # noqa: ANN001
    """Kolmogorov-Smirnov statistic: the largest gap between the score CDFs of positives and negatives."""
    y, s, w = _arrays(y, score, weight)
    if not _both_classes(y):
        return math.nan
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    pos = np.cumsum(w * y) / np.sum(w * y)
    neg = np.cumsum(w * (1 - y)) / np.sum(w * (1 - y))
    # Evaluate the CDFs only after the last row of each run of tied scores.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    return float(np.max(np.abs(pos[last_of_tie] - neg[last_of_tie])))


def brier(y, probability, weight=None) -> float:  # noqa: ANN001
    """Mean squared error of probabilities (lower is better)."""
    y, p, w = _arrays(y, probability, weight)
    return float(np.sum(w * (p - y) ** 2) / np.sum(w)) if y.size else math.nan


def capture_at(y, score, fraction: float = 0.10, weight=None) -> float:  # noqa: ANN001
    """Share of all adverse outcomes among the top ``fraction`` of rows by score.

    Ties at the cut-off are shared out fairly: each tied row counts with the fraction of the tie that
    fits in the budget, so the result does not depend on row order.
    """
    if not 0 < fraction <= 1:
        raise UsageError(f"fraction must be in (0, 1]; got {fraction}.")
    y, s, w = _arrays(y, score, weight)
    total = float(np.sum(w * y))
    if total == 0:
        return math.nan
    budget = fraction * float(np.sum(w))
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    # Runs of tied scores: weight and adverse weight per run, cumulated from the top.
    starts = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    run_w = np.add.reduceat(w, starts)
    run_pos = np.add.reduceat(w * y, starts)
    before = np.r_[0.0, np.cumsum(run_w)[:-1]]  # weight taken before each run
    share = np.clip((budget - before) / run_w, 0.0, 1.0)
    found = float(np.sum(share * run_pos))
    return found / total


def rate_by_grade(y, grades: Sequence[str] | np.ndarray, weight=None) -> pl.DataFrame:  # noqa: ANN001
    """Realized adverse rate per grade: columns ``grade``, ``n``, ``adverse``, ``rate`` (all four grades)."""
    y_arr, _, w = _arrays(y, np.zeros(len(y)), weight)
    frame = pl.DataFrame({"grade": np.asarray(grades, dtype=str), "y": y_arr, "w": w})
    agg = frame.group_by("grade").agg(pl.len().alias("n"), (pl.col("y") * pl.col("w")).sum().alias("adv"),
                                      pl.col("w").sum().alias("wsum"))
    base = pl.DataFrame({"grade": list(GRADES)})
    out = base.join(agg, on="grade", how="left").with_columns(
        pl.col("n").fill_null(0).cast(pl.Int64),
        pl.col("adv").fill_null(0.0).alias("adverse"),
        (pl.col("adv") / pl.col("wsum")).alias("rate"),
    )
    return out.select("grade", "n", "adverse", "rate")


def rates_rise_strictly(rates: pl.DataFrame) -> bool:
    """Whether the realized rate rises strictly A < B < C < D (grades with no rows break the chain)."""
    values = rates.sort("grade")["rate"].to_list()
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return False
    return all(a < b for a, b in zip(values, values[1:], strict=False))


def spearman(a, b) -> float:  # noqa: ANN001
    """Spearman rank correlation (NaN if either side is constant)."""
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.size < 2 or np.all(a_arr == a_arr[0]) or np.all(b_arr == b_arr[0]):
        return math.nan
    ra = pl.Series(a_arr).rank("average").to_numpy()
    rb = pl.Series(b_arr).rank("average").to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def score_metrics(y, score, probability=None, weight=None, grades=None) -> dict[str, float]:  # noqa: ANN001
    """All metrics of one score on one evaluation set, as a flat dict.

    ``probability`` (if given) feeds the Brier score; ``grades`` (if given) adds ``rate_A``..``rate_D``
    and ``grades_monotone`` (1.0 when rates rise strictly).
    """
    y_arr, s_arr, w_arr = _arrays(y, score, weight)
    out = {
        "n": float(y_arr.size),
        "positives": float(np.sum(y_arr)),
        "auc": auc(y_arr, s_arr, w_arr),
        "pr_auc": pr_auc(y_arr, s_arr, w_arr),
        "ks": ks(y_arr, s_arr, w_arr),
        "capture_10": capture_at(y_arr, s_arr, 0.10, w_arr),
        "brier": brier(y_arr, probability, w_arr) if probability is not None else math.nan,
    }
    if grades is not None:
        rates = rate_by_grade(y_arr, grades, w_arr)
        for row in rates.iter_rows(named=True):
            out[f"rate_{row['grade']}"] = math.nan if row["rate"] is None else float(row["rate"])
            out[f"share_{row['grade']}"] = float(row["n"]) / max(1.0, float(y_arr.size))
        out["grades_monotone"] = 1.0 if rates_rise_strictly(rates) else 0.0
    return out


# --- out-of-time evaluation of a trained model's test snapshots ------------------------------------

def truth_over_horizon(truth: pl.DataFrame, rows: pl.DataFrame, horizon_days: int) -> np.ndarray:
    """Mean latent p_fail over each row's horizon months [t, t + horizon) (NaN where unknown)."""
    snaps = (
        rows.select(pl.col("as_of").unique())
        .with_columns((pl.col("as_of") + pl.duration(days=horizon_days)).alias("end"))
        .lazy()
    )
    mean = (
        truth.lazy()
        .select("enterprise_id", pl.col("month").cast(pl.Date), pl.col("p_fail").cast(pl.Float64))
        .join_where(snaps, pl.col("month") >= pl.col("as_of"), pl.col("month") < pl.col("end"))
        .group_by("enterprise_id", "as_of")
        .agg(pl.col("p_fail").mean().alias("truth"))
    )
    keys = ["enterprise_id", "as_of"]
    out = rows.select(keys).lazy().join(mean, on=keys, how="left", maintain_order="left").collect()
    return out["truth"].fill_null(np.nan).to_numpy().astype(np.float64)

