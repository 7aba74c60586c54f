"""The MLflow pyfunc face of ``CreditModel``: features (a pandas DataFrame) → calibrated probability.

An edge module: MLflow hands pyfunc models pandas frames, so pandas appears here and nowhere else in
the model code. It is imported only when a model is logged or loaded through MLflow. Annotations are
evaluated (no ``from __future__ import annotations``) because MLflow reads ``predict``'s input hint.
"""

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import polars as pl

from models.artifact import MODEL_ARTIFACT, CreditModel


class CreditModelPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper; ``context.artifacts[MODEL_ARTIFACT]`` is a saved ``CreditModel`` folder."""

    def load_context(self, context: Any) -> None:
        self.model = CreditModel.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.model.predict_proba(pl.from_pandas(model_input))
