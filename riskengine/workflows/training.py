"""Registering a trained model: draw its evaluation plots, then log everything to MLflow.

The registry (``models.registry``) logs what it is given; the plots are drawn here, and a plot that
fails is recorded as a run tag instead of losing the trained model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from models.registry import RegisteredRun, log_training
from models.train_config import TrainResult
from riskengine.core.config import Settings
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
