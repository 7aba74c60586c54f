"""Registering a trained model: draw its evaluation plots, then log everything to MLflow.

The registry (``models.registry``) logs what it is given; the plots are drawn here, and a plot that
fails is recorded as a run tag instead of losing the trained model.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import polars as pl

from models.registry import RegisteredRun, log_training
from models.train_config import TrainResult
from riskengine.core.config import Settings
from riskengine.core.store import Store
from riskengine.workflows.reports.plots import shap_summary_png


def register(result: TrainResult, settings: Settings | None = None, *,
             tags: dict[str, str] | None = None) -> RegisteredRun:
    """Log ``result`` with its SHAP summary plot, register a version and point ``challenger`` at it."""
    tags = dict(tags or {})
    with tempfile.TemporaryDirectory(prefix="riskengine-plots-") as tmp:
        plots = []
        try:
            plots.append(shap_summary_png(result.model, result.test_frame, Path(tmp) / "shap_summary.png",
                                          seed=result.config.seed))
        except Exception as exc:  # noqa: BLE001 - a plot must never lose a trained model
            tags["riskengine.shap_plot_error"] = str(exc)[:250]
        return log_training(result, settings, tags=tags, artifacts={"evaluation": plots})


def recorded_inclusion(settings: Settings, before: date) -> pl.DataFrame | None:
    """The stored plans' random draws for periods that start before ``before`` (D): one row per drawn
    enterprise with ``month`` (the period's first day) and its ``inclusion_probability``; None when the
    store holds no plan that recorded them (``models.labels.design_weights`` then weighs every visit 1).
    """
    if not Path(settings.store_file).exists():
        return None
    store = Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)
    parts = []
    for period in store.plan_periods():
        month = date.fromisoformat(f"{period}-01")
        if month < before and (draw := store.random_draw(period)) is not None:
            parts.append(draw.select(pl.col("enterprise_id").cast(pl.String), pl.lit(month).alias("month"),
                                     pl.col("inclusion_probability").cast(pl.Float64)))
    return pl.concat(parts) if parts else None
