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
from models.labels import add_months
from models.registry import CHAMPION, client
from riskengine.core.config import Settings
from riskengine.core.contract import PILOT_SECTORS
from riskengine.core.files import atomic_write_text
from riskengine.core.store import Store
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import MonitorPolicy
from riskengine.workflows.monitor_alerts import alerts_and_watch
from riskengine.workflows.monitor_figures import (
    calibration_rows,
    feature_psi,
    grade_cells,
    grades_dict,
    migration_summary,
    monitored_months,
    random_inspections,
    sector_shift,
)


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
    monthly = {c["label"]: c for c in grade_cells(insp, ["label"], policy)} if insp.height else {}

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
                "grades": cell["grades"] if cell else grades_dict(pl.DataFrame(schema={"grade": pl.String})),
                "monotone": bool(cell and cell["monotone"]),
                "reversals": cell["reversals"] if cell else [],
                "psi_score": psi_score.get(label),
                "psi_features_max": max(
                    (v for v in psi_features.get(label, {}).values() if math.isfinite(v)), default=None
                ),
                "psi_features": psi_features.get(label, {}),
            }
        )

    pooled_cells = grade_cells(insp, [], policy) if insp.height else []
    pooled = (
        pooled_cells[0]
        if pooled_cells
        else {
            "grades": grades_dict(pl.DataFrame(schema={"grade": pl.String})),
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
    by_sector = grade_cells(sectors, ["sector"], policy) if insp.height else []
    by_district = grade_cells(insp, ["district"], policy) if insp.height else []
    shift = sector_shift(tables, as_of, window, policy)

    migration_out = migration_summary(grade_runs, window)
    calibration = calibration_rows(insp, policy)

    # A model trained on "an adverse outcome recorded in the horizon" (most enterprises are never
    # inspected, so most labels are 0) predicts far less than an inspection finds: its calibration
    # is shown, but judged only for a model whose card says it predicts an inspection's finding.
    target = str((getattr(model, "metadata", None) or {}).get("target", ""))
    # The blend (models.blend) is calibrated on visits: it predicts an inspection's finding too.
    judged = target.startswith(("random", "inspection", "blend"))
    if calibration and not judged:
        notes.append(
            f"calibration: the champion's target is {target or 'an adverse outcome in the horizon'}, not "
            "what an inspection finds; predicted and realized are shown side by side, not alerted on"
        )
    alerts, watch = alerts_and_watch(
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
        if period in labels and (draw := store.random_draw(period)) is not None:
            plans[period] = draw
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
