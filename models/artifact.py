"""The trained credit model as one object: booster, calibrator, feature encoding and neutral values.

``CreditModel`` is what training produces, what MLflow stores and what scoring loads. It owns the
whole path from a feature frame to a calibrated probability, so that every caller neutralises the
nuisance features (inspector strictness, issue 4) and encodes categoricals the same way.

It saves to and loads from a plain folder (``booster.txt`` + ``model.json``, no pickle), which
``models.registry`` wraps as an MLflow pyfunc model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from riskengine.core.errors import ModelError
from riskengine.core.files import atomic_write_text, jsonable

if TYPE_CHECKING:
    import lightgbm as lgb

ARTIFACT_FORMAT = 1
BOOSTER_FILE = "booster.txt"
META_FILE = "model.json"


# The folder name of the saved model inside an MLflow run's artifacts.
MODEL_ARTIFACT = "credit_model"


@dataclass
class Calibrator:
    """Monotone map from the booster's raw margin to a probability.

    ``platt``: ``p = sigmoid(slope * raw + intercept)`` (strictly increasing for slope > 0, so the
    ranking — AUC, capture — is unchanged). ``isotonic``: piecewise-linear through ``x``/``y``
    (scikit-learn ``IsotonicRegression`` thresholds, clipped outside), non-decreasing.
    ``identity``: ``sigmoid(raw)``.
    """

    method: str = "identity"
    slope: float = 1.0
    intercept: float = 0.0
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        if self.method == "platt":
            z = self.slope * raw + self.intercept
        else:
            z = raw
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "slope": self.slope, "intercept": self.intercept,
                "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        return cls(method=str(data["method"]), slope=float(data["slope"]),
                   intercept=float(data["intercept"]), x=[float(v) for v in data.get("x", [])],
                   y=[float(v) for v in data.get("y", [])])


class CreditModel:
    """A calibrated LightGBM credit-risk model with its feature encoding.

    ``feature_names`` are the booster's columns in order. ``categories`` maps each categorical
    feature that arrives as text to its known levels (code = index; unknown levels become missing).
    ``neutral`` maps each nuisance feature to the value it takes at scoring (the training median), so
    the grade never depends on which inspector happened to visit.
    """

    def __init__(
        self,
        booster: lgb.Booster,
        feature_names: Sequence[str],
        *,
        calibrator: Calibrator | None = None,
        categorical: Sequence[str] = (),
        categories: Mapping[str, Sequence[str]] | None = None,
        neutral: Mapping[str, float] | None = None,
        version: str = "local",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.booster = booster
        self.feature_names = list(feature_names)
        self.calibrator = calibrator or Calibrator()
        self.categorical = list(categorical)
        self.categories = {k: list(v) for k, v in (categories or {}).items()}
        self.neutral = dict(neutral or {})
        self.version = version
        self.metadata: dict[str, Any] = dict(metadata or {})
        unknown = (set(self.categorical) | set(self.neutral)) - set(self.feature_names)
        if unknown:
            raise ModelError(f"categorical/nuisance features not among the model's features: "
                             f"{sorted(unknown)}")

    # --- features -> matrix ---------------------------------------------------------------------

    @property
    def nuisance(self) -> list[str]:
        """The features set to a neutral value at scoring."""
        return list(self.neutral)

    def encode(self, features: pl.DataFrame | pl.LazyFrame, *, neutralise: bool = True) -> np.ndarray:
        """The float64 matrix the booster sees: columns in order, categoricals coded, nuisance neutral.

        ``neutralise=False`` keeps the observed nuisance values (training and diagnostics only).
        """
        if isinstance(features, pl.LazyFrame):
            features = features.collect()
        # A nuisance column that only training rows carry (the visit's kind and inspector, issue 11)
        # takes its neutral value when absent.
        missing = [c for c in self.feature_names
                   if c not in features.columns and not (neutralise and c in self.neutral)]
        if missing:
            raise ModelError(f"feature frame lacks the model's feature column(s): {', '.join(missing)}")
        exprs: list[pl.Expr] = []
        for name in self.feature_names:
            if neutralise and name in self.neutral:
                exprs.append(pl.lit(self.neutral[name], dtype=pl.Float64).alias(name))
            elif name in self.categories:
                levels = pl.Series(self.categories[name], dtype=pl.String)
                code = pl.col(name).cast(pl.String).replace_strict(
                    levels, pl.Series(range(len(levels)), dtype=pl.Float64), default=None,
                    return_dtype=pl.Float64)
                exprs.append(code.alias(name))
            else:
                exprs.append(pl.col(name).cast(pl.Float64).alias(name))
        out = features.select(exprs)
        return out.to_numpy().astype(np.float64, copy=False).reshape(features.height, len(self.feature_names))

    # --- predictions ----------------------------------------------------------------------------

    def predict_raw(self, features: pl.DataFrame | pl.LazyFrame) -> np.ndarray:
        """The booster's raw margin (log-odds before calibration), nuisance features neutral."""
        matrix = self.encode(features)
        if matrix.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.booster.predict(matrix, raw_score=True), dtype=np.float64)

    def predict_proba(self, features: pl.DataFrame | pl.LazyFrame) -> np.ndarray:
        """Calibrated probability of an adverse outcome within the horizon (nuisance neutral)."""
        return self.calibrator(self.predict_raw(features))

    def contributions(self, features: pl.DataFrame | pl.LazyFrame) -> np.ndarray:
        """SHAP values on the raw margin: n x (n_features + 1), last column the bias.

        LightGBM's exact TreeSHAP (``pred_contrib``); each row sums to ``predict_raw``. Nuisance
        features are neutral, so their contribution is the same constant for everyone.
        """
        matrix = self.encode(features)
        width = len(self.feature_names) + 1
        if matrix.shape[0] == 0:
            return np.zeros((0, width), dtype=np.float64)
        contrib = self.booster.predict(matrix, pred_contrib=True)
        return np.asarray(contrib, dtype=np.float64).reshape(matrix.shape[0], width)

    # --- persistence ----------------------------------------------------------------------------

    def to_meta(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "feature_names": self.feature_names,
            "categorical": self.categorical,
            "categories": self.categories,
            "neutral": self.neutral,
            "calibrator": self.calibrator.to_dict(),
            "metadata": jsonable(self.metadata),
        }

    def save(self, folder: Path) -> Path:
        """Write ``booster.txt`` and ``model.json`` into ``folder`` (each atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / BOOSTER_FILE, self.booster.model_to_string())
        atomic_write_text(folder / META_FILE, json.dumps(self.to_meta(), ensure_ascii=False, indent=1))
        return folder

    @classmethod
    def load(cls, folder: Path, version: str = "local") -> CreditModel:
        """Read a model written by ``save``."""
        import lightgbm as lgb  # noqa: PLC0415 - heavy
        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            booster = lgb.Booster(model_str=(folder / BOOSTER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError, lgb.basic.LightGBMError) as exc:
            raise ModelError(f"{folder}: not a readable riskengine model ({exc})") from exc
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ModelError(f"{folder}: model format {meta.get('format')!r}; expected {ARTIFACT_FORMAT}")
        return cls(
            booster,
            meta["feature_names"],
            calibrator=Calibrator.from_dict(meta["calibrator"]),
            categorical=meta.get("categorical", []),
            categories=meta.get("categories", {}),
            neutral=meta.get("neutral", {}),
            version=version,
            metadata=meta.get("metadata", {}),
        )

    def __repr__(self) -> str:
        return (f"CreditModel(version={self.version!r}, features={len(self.feature_names)}, "
                f"nuisance={self.nuisance}, calibrator={self.calibrator.method!r})")
