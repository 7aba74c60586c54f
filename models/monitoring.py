"""Statistics of grade monitoring (issue 14): rates with intervals, design weights, monotonicity
tests that do not cry wolf, population stability and grade migration. Frames in, frames out.

Choices, and why not an off-the-shelf monitor: Evidently and NannyML bring pandas, plotly and
dozens of dependencies for what is here a few dozen lines (PSI on reference quantile bins, Wilson
intervals), and neither knows design weights from a 双随机 plan or the grade order; optbinning's
``ScorecardMonitoring`` needs an optbinning ``Scorecard``, not a LightGBM model. So the maths is
written out below, each formula with its source, and tested against hand-computed values.

* Rates: Hájek's ratio estimator Σ w·y / Σ w with w = 1 / inclusion probability (Horvitz–Thompson
  weights; all 1 when no plan recorded them), Kish's effective sample size (Σ w)² / Σ w², and the
  Wilson score interval on that effective size (Wilson 1927; good coverage for small n and rates
  near 0, where the normal interval fails).
* Monotonicity: ``monotone`` is the plain order of the point estimates (it may be false by chance);
  a *reversal* is called only when a one-sided two-proportion z-test finds a lower grade's rate
  significantly above the next grade's, both with at least ``min_n`` inspections, at a Bonferroni-
  corrected level over every comparison made — so small samples are reported, never alarmed on.
* Trend: the Cochran–Armitage test for a rising rate over the ordered grades (pooled counts).
* PSI: Σ (a − e) · ln(a / e) over the reference's decile bins (plus a bin for missing values; text
  columns by level), with shares floored at 1e-4 (the usual convention: 0.1 watch, 0.25 act). On a
  small group (a sector of 40 enterprises) PSI is large by chance alone: under no change it is about
  χ²(B − 1) · (1/n + 1/N) for B bins (Yurdakul 2018, "Statistical properties of the population
  stability index"), so ``psi_chance`` gives the level that chance exceeds with probability alpha and
  a threshold is only applied above it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.stats import chi2, norm

from riskengine.core.contract import GRADES

EPS = 1e-4


def wilson(successes: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion (``n`` may be an effective, non-integer size)."""
    if n <= 0:
        return (math.nan, math.nan)
    z = float(norm.ppf(1 - alpha / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rates(frame: pl.DataFrame, by: Sequence[str], alpha: float = 0.05) -> pl.DataFrame:
    """Per group of ``by``: inspections ``n``, adverse ``k``, Hájek rate, effective n, Wilson CI.

    ``frame`` needs ``adverse`` (bool or 0/1) and ``weight`` (1 / inclusion probability)."""
    agg = (
        frame.group_by(*by)
        .agg(
            pl.len().alias("n"),
            pl.col("adverse").cast(pl.Float64).sum().alias("k"),
            (pl.col("weight") * pl.col("adverse").cast(pl.Float64)).sum().alias("_wy"),
            pl.col("weight").sum().alias("_w"),
            (pl.col("weight") ** 2).sum().alias("_w2"),
        )
        .with_columns(
            (pl.col("_wy") / pl.col("_w")).alias("rate"), (pl.col("_w") ** 2 / pl.col("_w2")).alias("n_eff")
        )
    )
    lows, highs = [], []
    for rate, n_eff in zip(agg["rate"].to_list(), agg["n_eff"].to_list(), strict=True):
        lo, hi = wilson(rate * n_eff, n_eff, alpha)
        lows.append(lo)
        highs.append(hi)
    return (
        agg.with_columns(
            pl.Series("ci_low", lows, dtype=pl.Float64), pl.Series("ci_high", highs, dtype=pl.Float64)
        )
        .drop("_wy", "_w", "_w2")
        .sort(*by)
    )


def one_sided_p(p1: float, n1: float, p2: float, n2: float) -> float:
    """P-value of H1: rate 1 > rate 2 (pooled two-proportion z-test)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(norm.sf((p1 - p2) / se))


def monotone(grade_rates: pl.DataFrame) -> bool:
    """Whether the point estimates rise strictly A < B < C < D (a grade without inspections breaks it)."""
    by_grade = dict(zip(grade_rates["grade"].to_list(), grade_rates["rate"].to_list(), strict=True))
    values = [by_grade.get(g) for g in GRADES]
    if any(v is None or math.isnan(v) for v in values):
        return False
    return all(a < b for a, b in zip(values, values[1:], strict=False))  # type: ignore[operator]


def reversals(grade_rates: pl.DataFrame, min_n: int) -> list[dict]:
    """Adjacent grade pairs testable (both ``n_eff`` >= min_n) with their one-sided p-value that the
    lower grade's rate is above the higher grade's."""
    by_grade = {r["grade"]: r for r in grade_rates.iter_rows(named=True)}
    out = []
    for low, high in zip(GRADES, GRADES[1:], strict=False):
        a, b = by_grade.get(low), by_grade.get(high)
        if a is None or b is None or a["n_eff"] < min_n or b["n_eff"] < min_n:
            continue
        out.append(
            {
                "lower": low,
                "higher": high,
                "rate_lower": a["rate"],
                "rate_higher": b["rate"],
                "p": one_sided_p(a["rate"], a["n_eff"], b["rate"], b["n_eff"]),
            }
        )
    return out


def trend_test(grade_rates: pl.DataFrame) -> dict[str, float]:
    """Cochran–Armitage test for a rate rising with the grade (scores 0..3), one-sided p-value."""
    rows = [r for r in grade_rates.iter_rows(named=True) if r["n"] > 0]
    if len(rows) < 2:
        return {"z": math.nan, "p": math.nan}
    t = np.array([GRADES.index(r["grade"]) for r in rows], dtype=float)
    n = np.array([r["n"] for r in rows], dtype=float)
    k = np.array([r["k"] for r in rows], dtype=float)
    total, p = n.sum(), k.sum() / n.sum()
    stat = float((t * (k - n * p)).sum())
    var = p * (1 - p) * float((n * t * t).sum() - (n * t).sum() ** 2 / total)
    if var <= 0:
        return {"z": math.nan, "p": math.nan}
    z = stat / math.sqrt(var)
    return {"z": z, "p": float(norm.sf(z))}


def psi_bins(reference: pl.Series, k: int = 10) -> list[float] | list[str]:
    """Bin edges (numeric: the inner edges of ``k`` reference quantile bins, deciles by default) or
    levels (text)."""
    ref = reference.drop_nulls()
    if reference.dtype == pl.String or reference.dtype == pl.Categorical or reference.dtype == pl.Boolean:
        return sorted(str(v) for v in ref.cast(pl.String).unique().to_list())
    if ref.len() == 0:
        return []
    k = max(2, k)
    qs = np.quantile(ref.cast(pl.Float64).to_numpy(), np.linspace(1 / k, 1 - 1 / k, k - 1))
    return sorted(set(float(q) for q in qs))


def _shares(values: pl.Series, bins: list[float] | list[str]) -> np.ndarray:
    n = values.len()
    if n == 0:
        return np.zeros(0)
    nulls = values.null_count()
    if bins and isinstance(bins[0], str):
        text = values.drop_nulls().cast(pl.String).to_list()
        levels = {b: i for i, b in enumerate(bins)}
        counts = np.zeros(len(bins) + 2)  # levels, unseen level, missing
        for v in text:
            counts[levels.get(v, len(bins))] += 1
    else:
        x = values.drop_nulls().cast(pl.Float64).to_numpy()
        idx = np.searchsorted(np.asarray(bins, dtype=float), x, side="right")
        counts = np.bincount(idx, minlength=len(bins) + 1).astype(float)
        counts = np.append(counts, 0.0)
    counts[-1] = nulls
    return counts / n


def psi(reference: pl.Series, current: pl.Series, bins: list[float] | list[str] | None = None) -> float:
    """Population stability index of ``current`` against ``reference`` (NaN if either is empty)."""
    if reference.len() == 0 or current.len() == 0:
        return math.nan
    bins = psi_bins(reference) if bins is None else bins
    e, a = _shares(reference, bins), _shares(current, bins)
    e, a = np.maximum(e, EPS), np.maximum(a, EPS)
    return float(((a - e) * np.log(a / e)).sum())


def psi_chance(n_reference: int, n_current: int, bins: int, alpha: float) -> float:
    """The PSI that samples of these sizes exceed by chance with probability ``alpha`` (no change)."""
    if n_reference <= 0 or n_current <= 0 or bins < 2:
        return math.inf
    return float(chi2.ppf(1 - alpha, bins - 1)) * (1 / n_reference + 1 / n_current)


def n_bins(reference: pl.Series, bins: list[float] | list[str]) -> int:
    """How many bins the reference occupies (the degrees of freedom of ``psi_chance`` plus one)."""
    return int((_shares(reference, bins) > 0).sum()) if reference.len() else 0


def migration(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Grade migration counts: one row per grade before, one column per grade after (enterprises in both)."""
    pairs = before.select("enterprise_id", pl.col("grade").alias("from")).join(
        after.select("enterprise_id", pl.col("grade").alias("to")), on="enterprise_id"
    )
    counts = {(f, t): n for f, t, n in pairs.group_by("from", "to").len().iter_rows()}
    return pl.DataFrame([{"from": f, **{t: counts.get((f, t), 0) for t in GRADES}} for f in GRADES])
