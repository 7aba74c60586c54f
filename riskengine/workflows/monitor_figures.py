"""The monitoring report's figures, computed from frames (``workflows.monitor`` assembles them): the
random inspections of each month with the grade then in force, the grade tables, the sector shift
test, the score and feature PSI, the grade migration and the calibration per grade."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

import polars as pl

from features.asof import visible_from
from models.grading import score_from_probability
from models.labels import add_months, month_start
from models.monitoring import (
    migration,
    monotone,
    n_bins,
    one_sided_p,
    psi,
    psi_bins,
    psi_chance,
    rates,
    reversals,
    trend_test,
)
from riskengine.core.contract import GRADES, adverse_inspection
from riskengine.core.errors import UsageError
from riskengine.supervision.policy import MonitorPolicy

ADVERSE = adverse_inspection()


def monitored_months(as_of: date, months: int) -> list[date]:
    """The ``months`` full calendar months before D's month, oldest first (first days)."""
    if months < 1:
        raise UsageError(f"--months must be a positive integer; got {months}.")
    first = month_start(as_of)
    return [add_months(first, -k) for k in range(months, 0, -1)]


def grade_cells(frame: pl.DataFrame, by: list[str], policy: MonitorPolicy) -> list[dict[str, Any]]:
    """Per group of ``by``: the grade table, monotone, reversals and the trend test."""
    out = []
    table = rates(frame, [*by, "grade"], policy.alpha)
    keys = table.select(by).unique().sort(by).iter_rows() if by else [()]
    for key in keys:
        cell = table
        for col, val in zip(by, key, strict=True):
            cell = cell.filter(pl.col(col) == val)
        out.append(
            {
                **dict(zip(by, key, strict=True)),
                "grades": grades_dict(cell),
                "monotone": monotone(cell),
                "reversals": reversals(cell, policy.min_inspections),
                "trend": trend_test(cell),
            }
        )
    return out


def grades_dict(cell: pl.DataFrame) -> dict[str, dict[str, Any]]:
    rows = {r["grade"]: r for r in cell.iter_rows(named=True)}
    out = {}
    for g in GRADES:
        r = rows.get(g)
        if r is None:
            out[g] = {
                "random_inspections": 0,
                "adverse": 0,
                "adverse_per_100": None,
                "ci_low": None,
                "ci_high": None,
                "n_eff": 0.0,
            }
        else:
            out[g] = {
                "random_inspections": int(r["n"]),
                "adverse": int(r["k"]),
                "adverse_per_100": 100 * r["rate"],
                "ci_low": 100 * r["ci_low"],
                "ci_high": 100 * r["ci_high"],
                "n_eff": r["n_eff"],
            }
    return out


def random_inspections(
    tables: Mapping[str, pl.LazyFrame],
    as_of: date,
    months: list[date],
    grade_runs: Mapping[date, pl.DataFrame],
    plans: Mapping[str, pl.DataFrame],
) -> tuple[pl.DataFrame, list[str]]:
    """Random inspections of the monitored months visible before D, with the grade in force that month,
    ``adverse`` and the design ``weight``. Returns (frame, notes)."""
    notes: list[str] = []
    end = add_months(months[-1], 1)
    insp = (
        tables["inspections"]
        .filter(
            (pl.col("kind") == "random")
            & (pl.col("inspected_on") >= months[0])
            & (pl.col("inspected_on") < end)
            & (visible_from("inspected_on") < pl.lit(as_of))
        )
        .select("enterprise_id", "inspected_on", ADVERSE.alias("adverse"))
        .with_columns(pl.col("inspected_on").dt.truncate("1mo").alias("month"))
        .collect()
    )
    runs = sorted(grade_runs)
    parts = []
    for m in months:
        in_force = [d for d in runs if d <= m]
        if not in_force:
            notes.append(f"{m:%Y-%m}: no grades were served yet (no stored grade run on or before {m})")
            continue
        grades = grade_runs[in_force[-1]].select(
            "enterprise_id", "grade", "probability", "score", "district", "sector"
        )
        month = insp.filter(pl.col("month") == m).join(grades, on="enterprise_id", how="inner")
        plan = plans.get(f"{m:%Y-%m}")
        if plan is not None and plan.height:
            month = month.join(
                plan.select("enterprise_id", (1.0 / pl.col("inclusion_probability")).alias("_w")),
                on="enterprise_id",
                how="left",
            )
            # Hájek within a grade: inspections outside the plan's draw take the grade's typical weight.
            month = month.with_columns(
                pl.col("_w").fill_null(pl.col("_w").mean().over("grade")).fill_null(1.0).alias("weight")
            ).drop("_w")
        else:
            month = month.with_columns(pl.lit(1.0).alias("weight"))
        parts.append(month.with_columns(pl.lit(in_force[-1]).alias("graded_on")))
    if not parts:
        return pl.DataFrame(
            schema={
                "enterprise_id": pl.String,
                "month": pl.Date,
                "adverse": pl.Boolean,
                "grade": pl.String,
                "weight": pl.Float64,
                "sector": pl.String,
                "district": pl.String,
                "probability": pl.Float64,
            }
        ), notes
    return pl.concat(parts, how="diagonal_relaxed"), notes


def sector_shift(
    tables: Mapping[str, pl.LazyFrame], as_of: date, months: list[date], policy: MonitorPolicy
) -> list[dict[str, Any]]:
    """Per sector and month M: the adverse rate of all inspections in [M − 1 month, M + 1 month)
    against the sector's rate in the 12 months before the window; one-sided test, Bonferroni over
    every sector and month tested."""

    start = add_months(months[0], -12)
    insp = (
        tables["inspections"]
        .filter(
            (pl.col("inspected_on") >= start)
            & (pl.col("inspected_on") < add_months(months[-1], 1))
            & (visible_from("inspected_on") < pl.lit(as_of))
        )
        .join(
            tables["enterprises"].select("enterprise_id", pl.col("sector").fill_null("unknown")),
            on="enterprise_id",
        )
        .select("sector", "inspected_on", ADVERSE.alias("adverse"))
        .collect()
    )
    base = (
        insp.filter(pl.col("inspected_on") < months[0])
        .group_by("sector")
        .agg(pl.len().alias("n0"), pl.col("adverse").sum().alias("k0"))
    )
    rows = []
    for m in months:
        recent = insp.filter(
            (pl.col("inspected_on") >= add_months(m, -1))
            & (pl.col("inspected_on") < add_months(m, 1))
            & (pl.col("inspected_on") >= months[0])
        )
        cur = recent.group_by("sector").agg(pl.len().alias("n"), pl.col("adverse").sum().alias("k"))
        for r in cur.join(base, on="sector", how="left").sort("sector").iter_rows(named=True):
            n0, k0 = r["n0"] or 0, r["k0"] or 0
            testable = r["n"] >= policy.min_inspections and n0 >= policy.min_inspections
            p1, p0 = r["k"] / r["n"], (k0 / n0 if n0 else math.nan)
            rows.append(
                {
                    "month": f"{m:%Y-%m}",
                    "sector": r["sector"],
                    "inspections": r["n"],
                    "adverse_per_100": 100 * p1,
                    "baseline_per_100": 100 * p0 if n0 else None,
                    "baseline_inspections": n0,
                    "p": one_sided_p(p1, r["n"], p0, n0) if testable else None,
                }
            )
    tested = sum(1 for r in rows if r["p"] is not None)
    for r in rows:
        r["shifted"] = r["p"] is not None and r["p"] < policy.alpha / max(1, tested)
    return rows


def feature_psi(
    model: Any, reference: pl.DataFrame, current: pl.DataFrame, months: list[date], alpha: float = 0.05
) -> tuple[dict[str, float], dict[str, dict[str, float]], list[dict[str, Any]], pl.DataFrame]:
    """(score PSI per month, feature PSI per month, score PSI per sector and month, reference scores).

    Each sector row carries the PSI that chance alone exceeds at its sizes: ``chance_watch`` at
    ``alpha``, ``chance_act`` at ``alpha`` Bonferroni-corrected over every sector and month."""
    ref_scores = reference.select("enterprise_id", "sector").with_columns(
        pl.Series("score", score_from_probability(model.predict_proba(reference)), dtype=pl.Float64)
    )
    score_bins = psi_bins(ref_scores["score"])
    names = list(model.feature_names)
    bins = {n: psi_bins(reference[n]) for n in names if n in reference.columns}
    psi_score: dict[str, float] = {}
    psi_features: dict[str, dict[str, float]] = {}
    by_sector: list[dict[str, Any]] = []
    n_tests = max(1, len(months) * current["sector"].n_unique())
    for m in months:
        cur = current.filter(pl.col("as_of") == m)
        label = f"{m:%Y-%m}"
        if cur.height == 0:
            continue
        scores = pl.Series("score", score_from_probability(model.predict_proba(cur)), dtype=pl.Float64)
        psi_score[label] = psi(ref_scores["score"], scores, score_bins)
        psi_features[label] = {n: psi(reference[n], cur[n], b) for n, b in bins.items()}
        cur_scores = cur.select("sector").with_columns(scores)
        for sector in sorted(set(cur_scores["sector"].drop_nulls().to_list())):
            ref_part = ref_scores.filter(pl.col("sector") == sector)
            ref_s = ref_part["score"]
            cur_s = cur_scores.filter(pl.col("sector") == sector)["score"]
            # The sector's own quantile bins, about ten enterprises a bin (at most ten bins), so that
            # a small sector is compared on bins it fills; the reference counts its enterprises once
            # (its snapshots repeat them), which keeps the chance level honest.
            sector_bins = psi_bins(ref_s, min(10, max(2, cur_s.len() // 10)))
            n_ref = ref_part["enterprise_id"].n_unique()
            df = n_bins(ref_s, sector_bins)
            by_sector.append(
                {
                    "month": label,
                    "sector": sector,
                    "enterprises": cur_s.len(),
                    "psi_score": psi(ref_s, cur_s, sector_bins),
                    "chance_watch": psi_chance(n_ref, cur_s.len(), df, alpha),
                    "chance_act": psi_chance(n_ref, cur_s.len(), df, alpha / n_tests),
                }
            )
    return psi_score, psi_features, by_sector, ref_scores


def migration_summary(grade_runs: Mapping[date, pl.DataFrame], window: list[date]) -> dict[str, Any]:
    """The grade runs in force over the window, and the migration matrix from the last run but one to
    the last and from the first to the last."""
    runs = sorted(grade_runs)
    in_force = [max((d for d in runs if d <= m), default=None) for m in window]
    used = [d for d in dict.fromkeys(in_force) if d is not None]
    migration_out: dict[str, Any] = {"runs": [d.isoformat() for d in used]}
    if len(used) >= 2:
        migration_out["last"] = {
            "from_run": used[-2].isoformat(),
            "to_run": used[-1].isoformat(),
            "matrix": migration(grade_runs[used[-2]], grade_runs[used[-1]]).to_dicts(),
        }
        migration_out["window"] = {
            "from_run": used[0].isoformat(),
            "to_run": used[-1].isoformat(),
            "matrix": migration(grade_runs[used[0]], grade_runs[used[-1]]).to_dicts(),
        }
    return migration_out


def calibration_rows(insp: pl.DataFrame, policy: MonitorPolicy) -> list[dict[str, Any]]:
    """Per grade: the random inspections, the mean predicted probability and the realized rate."""
    calibration = []
    if insp.height:
        cal = rates(insp, ["grade"], policy.alpha).join(
            insp.group_by("grade").agg(pl.col("probability").mean().alias("predicted")), on="grade"
        )
        for r in cal.sort("grade").iter_rows(named=True):
            calibration.append(
                {
                    "grade": r["grade"],
                    "random_inspections": r["n"],
                    "predicted": r["predicted"],
                    "realized": r["rate"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                }
            )
    return calibration
