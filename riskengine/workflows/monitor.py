"""Watching the grades (issue 14, CONTRACT §6): monthly proof that they work, and drift.

For each of the N full months before D, the grades *in force* that month (the latest stored grade
run on or before the month's first day) are joined with the 双随机 random inspections of that month
that were visible before D. Per grade: inspections, adverse outcomes per 100 (Hájek estimator with
the plan's inclusion probabilities where a stored plan recorded them) and a Wilson interval; whether
A < B < C < D; reversals tested without crying wolf (``models.monitoring``). The same pooled over the
window by pilot sector and by district. Drift: PSI of the champion's score and of each model feature
against its training population (the features at its training snapshots, recomputed point-in-time
from the lake), per month and per sector; a per-sector shift test of the adverse rate of all
inspections in the last two months against the year before the window; the grade migration matrix;
calibration per grade. Alerts name what broke; the JSON is what a scheduler reads.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from features import compute_features
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
from models.registry import CHAMPION, client
from riskengine.core.config import Settings
from riskengine.core.contract import GRADES, PILOT_SECTORS, adverse_inspection
from riskengine.core.errors import UsageError
from riskengine.core.files import atomic_write_text
from riskengine.core.store import Store
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import MonitorPolicy

ADVERSE = adverse_inspection()


@dataclass
class MonitorReport:
    """Everything the report shows; ``to_json`` is the CONTRACT §6 shape plus the detail."""

    as_of: date
    months: list[dict[str, Any]]
    pooled: dict[str, Any]
    by_sector: list[dict[str, Any]]
    by_district: list[dict[str, Any]]
    sector_shift: list[dict[str, Any]]
    psi_by_sector: list[dict[str, Any]]
    migration: dict[str, Any]
    calibration: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    watch: list[dict[str, Any]]
    model_version: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return _clean(
            {
                "as_of": self.as_of.isoformat(),
                "model_version": self.model_version,
                "months": self.months,
                "pooled": self.pooled,
                "by_sector": self.by_sector,
                "by_district": self.by_district,
                "sector_shift": self.sector_shift,
                "psi_by_sector": self.psi_by_sector,
                "migration": self.migration,
                "calibration": self.calibration,
                "alerts": self.alerts,
                "watch": self.watch,
                "notes": self.notes,
            }
        )


def _clean(value: Any) -> Any:
    """JSON-ready: NaN as null, dates as ISO text, floats rounded to 6 places."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if isinstance(value, date):
        return value.isoformat()
    return value


def monitored_months(as_of: date, months: int) -> list[date]:
    """The ``months`` full calendar months before D's month, oldest first (first days)."""
    if months < 1:
        raise UsageError(f"--months must be a positive integer; got {months}.")
    first = month_start(as_of)
    return [add_months(first, -k) for k in range(months, 0, -1)]


def _grade_cells(frame: pl.DataFrame, by: list[str], policy: MonitorPolicy) -> list[dict[str, Any]]:
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
                "grades": _grades_dict(cell),
                "monotone": monotone(cell),
                "reversals": reversals(cell, policy.min_inspections),
                "trend": trend_test(cell),
            }
        )
    return out


def _grades_dict(cell: pl.DataFrame) -> dict[str, dict[str, Any]]:
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


def build_report(
    tables: Mapping[str, pl.LazyFrame],
    as_of: date,
    months: int,
    grade_runs: Mapping[date, pl.DataFrame],
    plans: Mapping[str, pl.DataFrame],
    policy: MonitorPolicy,
    model: Any = None,
) -> MonitorReport:
    """The monitoring report from the lake, the stored grade runs and plans, and the champion."""
    window = monitored_months(as_of, months)
    insp, notes = random_inspections(tables, as_of, window, grade_runs, plans)
    insp = insp.with_columns(pl.col("month").dt.strftime("%Y-%m").alias("label"))
    monthly = {c["label"]: c for c in _grade_cells(insp, ["label"], policy)} if insp.height else {}

    # PSI against the champion's training population.
    psi_score: dict[str, float] = {}
    psi_features: dict[str, dict[str, float]] = {}
    psi_sector: list[dict[str, Any]] = []
    if model is not None:
        snaps = [date.fromisoformat(d) for d in (model.metadata.get("snapshots") or {}).get("train", [])]
        if snaps:
            active = (
                tables["enterprises"].filter(pl.col("status") == "active").select("enterprise_id", "sector")
            )
            feats = compute_features(tables, sorted(set(snaps) | set(window)))
            feats = feats.join(active.collect(), on="enterprise_id", how="inner", suffix="_ent")
            if "sector" not in feats.columns and "sector_ent" in feats.columns:
                feats = feats.rename({"sector_ent": "sector"})
            reference = feats.filter(pl.col("as_of").is_in(snaps))
            current = feats.filter(pl.col("as_of").is_in(window))
            psi_score, psi_features, psi_sector, _ = feature_psi(
                model, reference, current, window, policy.alpha
            )
            nuisance = set(getattr(model, "nuisance", []))
            psi_features = {
                m: {n: v for n, v in f.items() if n not in nuisance} for m, f in psi_features.items()
            }
        else:
            notes.append("the champion records no training snapshots: no PSI against its training population")
    else:
        notes.append("no champion model: no PSI")

    month_rows = []
    for m in window:
        label = f"{m:%Y-%m}"
        cell = monthly.get(label)
        month_rows.append(
            {
                "month": label,
                "grades": cell["grades"] if cell else _grades_dict(pl.DataFrame(schema={"grade": pl.String})),
                "monotone": bool(cell and cell["monotone"]),
                "reversals": cell["reversals"] if cell else [],
                "psi_score": psi_score.get(label),
                "psi_features_max": max(
                    (v for v in psi_features.get(label, {}).values() if math.isfinite(v)), default=None
                ),
                "psi_features": psi_features.get(label, {}),
            }
        )

    pooled_cells = _grade_cells(insp, [], policy) if insp.height else []
    pooled = (
        pooled_cells[0]
        if pooled_cells
        else {
            "grades": _grades_dict(pl.DataFrame(schema={"grade": pl.String})),
            "monotone": False,
            "reversals": [],
            "trend": {},
        }
    )
    sectors = insp.with_columns(
        pl.when(pl.col("sector").is_in(PILOT_SECTORS))
        .then(pl.col("sector"))
        .otherwise(pl.lit("other"))
        .alias("sector")
    )
    by_sector = _grade_cells(sectors, ["sector"], policy) if insp.height else []
    by_district = _grade_cells(insp, ["district"], policy) if insp.height else []
    shift = sector_shift(tables, as_of, window, policy)

    # Migration month over month, and over the whole window.
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

    # A model trained on "an adverse outcome recorded in the horizon" (most enterprises are never
    # inspected, so most labels are 0) predicts far less than an inspection finds: its calibration
    # is shown, but judged only for a model whose card says it predicts an inspection's finding.
    target = str((getattr(model, "metadata", None) or {}).get("target", ""))
    judged = target.startswith(("random", "inspection"))
    if calibration and not judged:
        notes.append(
            f"calibration: the champion's target is {target or 'an adverse outcome in the horizon'}, not "
            "what an inspection finds; predicted and realized are shown side by side, not alerted on"
        )
    alerts, watch = _alerts(
        month_rows, pooled, by_sector, by_district, shift, psi_sector, calibration if judged else [], policy
    )
    return MonitorReport(
        as_of,
        month_rows,
        pooled,
        by_sector,
        by_district,
        shift,
        psi_sector,
        migration_out,
        calibration,
        alerts,
        watch,
        getattr(model, "version", None),
        notes,
    )


def _alerts(
    months: list[dict],
    pooled: dict,
    by_sector: list[dict],
    by_district: list[dict],
    shift: list[dict],
    psi_sector: list[dict],
    calibration: list[dict],
    policy: MonitorPolicy,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    alerts: list[dict[str, Any]] = []
    watch: list[dict[str, Any]] = []
    # Reversals: Bonferroni over every adjacent-pair test made in the report.
    groups = [("month", m["month"], m["reversals"]) for m in months]
    groups += [("sector", s["sector"], s["reversals"]) for s in by_sector]
    groups += [("district", d["district"], d["reversals"]) for d in by_district]
    groups += [("pooled", "all", pooled.get("reversals", []))]
    tests = sum(len(r) for _, _, r in groups)
    for kind, key, revs in groups:
        for r in revs:
            if r["p"] < policy.alpha / max(1, tests):
                alerts.append(
                    {
                        "rule": "grade_order_reversed",
                        "level": "act",
                        "scope": f"{kind}:{key}",
                        "detail": f"{kind} {key}: grade {r['lower']} finds {100 * r['rate_lower']:.1f} "
                        f"per 100, more than {r['higher']} ({100 * r['rate_higher']:.1f}); "
                        f"p = {r['p']:.2g} (Bonferroni over {tests} tests)",
                    }
                )
    trend = pooled.get("trend") or {}
    n_ok = all((pooled["grades"][g]["n_eff"] or 0) >= policy.min_inspections for g in GRADES)
    if n_ok and trend.get("p") is not None and not (trend["p"] < policy.alpha):
        alerts.append(
            {
                "rule": "no_rising_trend",
                "level": "act",
                "scope": "pooled:all",
                "detail": f"pooled over the window, adverse rates do not rise with the grade "
                f"(Cochran–Armitage z = {trend['z']:.2f}, p = {trend['p']:.2g})",
            }
        )
    for m in months:
        value = m.get("psi_score")
        if value is not None and math.isfinite(value):
            entry = {
                "rule": "psi_score",
                "scope": f"month:{m['month']}",
                "detail": f"{m['month']}: score PSI {value:.3f} against the training population",
            }
            if value >= policy.psi_act:
                alerts.append({**entry, "level": "act"})
            elif value >= policy.psi_watch:
                watch.append({**entry, "level": "watch"})
    # One alert per drifting feature over the window (a feature past the threshold month after month
    # is one finding, not twelve).
    drifting: dict[str, list[tuple[str, float]]] = {}
    for m in months:
        for name, v in m.get("psi_features", {}).items():
            if v is not None and math.isfinite(v) and v >= policy.psi_act:
                drifting.setdefault(name, []).append((m["month"], v))
    for name, hits in sorted(drifting.items(), key=lambda kv: -max(v for _, v in kv[1])):
        alerts.append(
            {
                "rule": "psi_features",
                "level": "act",
                "scope": f"feature:{name}",
                "detail": f"feature {name}: PSI ≥ {policy.psi_act} in {len(hits)} of {len(months)} months "
                f"(first {hits[0][0]}, max {max(v for _, v in hits):.2f})",
            }
        )
    for s in psi_sector:
        value = s["psi_score"]
        if value is None or not math.isfinite(value) or s["enterprises"] < policy.min_inspections:
            continue
        entry = {
            "rule": "psi_sector",
            "scope": f"sector:{s['sector']}:{s['month']}",
            "detail": f"{s['month']}: score PSI of sector {s['sector']} {value:.3f} "
            f"({s['enterprises']} enterprises; chance alone reaches {s['chance_watch']:.3f}, "
            f"{s['chance_act']:.3f} over every sector and month)",
        }
        # A small sector's PSI is large by chance: a threshold counts only above that level.
        if value >= max(policy.psi_act, s["chance_act"]):
            alerts.append({**entry, "level": "act"})
        elif value >= max(policy.psi_watch, s["chance_watch"]):
            watch.append({**entry, "level": "watch"})
    for s in shift:
        if s["shifted"]:
            alerts.append(
                {
                    "rule": "sector_shift",
                    "level": "act",
                    "scope": f"sector:{s['sector']}:{s['month']}",
                    "detail": f"{s['month']}: sector {s['sector']} finds {s['adverse_per_100']:.1f} "
                    f"adverse per 100 inspections in two months against "
                    f"{s['baseline_per_100']:.1f} the year before; p = {s['p']:.2g}",
                }
            )
    for c in calibration:
        if c["random_inspections"] < policy.min_inspections or c["predicted"] is None:
            continue
        outside = not (c["ci_low"] <= c["predicted"] <= c["ci_high"])
        gap = abs(c["predicted"] - c["realized"]) / max(c["realized"], 1e-9)
        if outside and gap > policy.calibration_tolerance:
            alerts.append(
                {
                    "rule": "calibration",
                    "level": "act",
                    "scope": f"grade:{c['grade']}",
                    "detail": f"grade {c['grade']}: predicted {100 * c['predicted']:.1f} per 100, "
                    f"realized {100 * c['realized']:.1f} ({100 * c['ci_low']:.1f}–"
                    f"{100 * c['ci_high']:.1f})",
                }
            )
    return alerts, watch


# --- loading from the lake and the store ------------------------------------------------------------


def load_inputs(
    settings: Settings, window: list[date]
) -> tuple[dict[date, pl.DataFrame], dict[str, pl.DataFrame]]:
    """Stored grade runs (those in force during the window) and the plans' random draws of its months."""

    grade_runs: dict[date, pl.DataFrame] = {}
    plans: dict[str, pl.DataFrame] = {}
    if not Path(settings.store_file).exists():
        return grade_runs, plans
    store = Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)
    dates = store.grade_dates()
    earlier = [d for d in dates if d <= window[0]]
    keep = ([earlier[-1]] if earlier else []) + [
        d for d in dates if window[0] < d < add_months(window[-1], 1)
    ]
    for d in keep:
        grade_runs[d] = store.latest_grades(d)
    labels = {f"{m:%Y-%m}" for m in window}
    for period in store.plan_periods():
        if period in labels:
            rows = store.plan(period).rows
            if {"stratum", "inclusion_probability", "enterprise_id"} <= set(rows.columns):
                plans[period] = rows.filter(pl.col("stratum") == "random").select(
                    "enterprise_id", "inclusion_probability"
                )
    return grade_runs, plans


def run_monitor(
    lake: Path, as_of: date, months: int, settings: Settings, policy: MonitorPolicy, model: Any = None
) -> MonitorReport:
    """The report for a lake as of D with the stored grades and plans (and the champion, if given)."""

    window = monitored_months(as_of, months)
    tables = load_tables(Path(lake))
    grade_runs, plans = load_inputs(settings, window)
    report = build_report(tables, as_of, months, grade_runs, plans, policy, model)
    if not grade_runs:
        report.notes.append(
            f"{settings.store_file}: no stored grades; run `riskengine score` for the months to monitor"
        )
    return report


# --- where the figures go ---------------------------------------------------------------------------


def latest_path(settings: Settings) -> Path:
    """The latest report's JSON, which the service exposes on ``/metrics``."""
    return settings.home / "monitor" / "latest.json"


def save_latest(report: MonitorReport, settings: Settings) -> Path:
    """Keep the report where the service's ``/metrics`` reads it."""

    return atomic_write_text(latest_path(settings), json.dumps(report.to_json(), ensure_ascii=False))


def metric_values(report: dict[str, Any]) -> dict[str, float]:
    """The report's headline figures as flat metric names (MLflow and Prometheus use the same)."""
    out: dict[str, float] = {}
    months = report.get("months") or []
    if months:
        last = months[-1]
        if last.get("psi_score") is not None:
            out["monitor_psi_score"] = float(last["psi_score"])
        if last.get("psi_features_max") is not None:
            out["monitor_psi_features_max"] = float(last["psi_features_max"])
    for g, cell in (report.get("pooled") or {}).get("grades", {}).items():
        if cell.get("adverse_per_100") is not None:
            out[f"monitor_adverse_per_100_{g}"] = float(cell["adverse_per_100"])
            out[f"monitor_random_inspections_{g}"] = float(cell["random_inspections"])
    out["monitor_monotone"] = 1.0 if (report.get("pooled") or {}).get("monotone") else 0.0
    out["monitor_alerts"] = float(len(report.get("alerts") or []))
    return out


def log_to_mlflow(report: MonitorReport, settings: Settings) -> str | None:
    """Log the figures as metrics of the champion version's run (one step per month); returns the
    run id, or None when the champion's run is unknown."""

    cli = client(settings)
    try:
        version = cli.get_model_version_by_alias(settings.mlflow.model_name, CHAMPION)
    except Exception:  # noqa: BLE001 - MLflow raises its own exception types for a missing alias
        return None
    run_id = getattr(version, "run_id", None)
    if not run_id:
        return None

    from mlflow.entities import Metric  # noqa: PLC0415 - heavy

    now = int(time.time() * 1000)
    metrics = []
    for step, m in enumerate(report.to_json()["months"]):
        if m.get("psi_score") is not None:
            metrics.append(Metric("monitor.psi_score", float(m["psi_score"]), now, step))
        for g, cell in m["grades"].items():
            if cell.get("adverse_per_100") is not None:
                metrics.append(
                    Metric(f"monitor.adverse_per_100.{g}", float(cell["adverse_per_100"]), now, step)
                )
    for name, value in metric_values(report.to_json()).items():
        metrics.append(Metric("monitor.window." + name.removeprefix("monitor_"), value, now, 0))
    if metrics:
        cli.log_batch(run_id, metrics=metrics)
    return str(run_id)
