"""Features: point-in-time feature families, each a pure function of lazy event tables and as_of dates.

``build_features(tables, as_of)`` returns (lazily) one row per (enterprise_id, as_of) for every
enterprise established before as_of, and ``compute_features`` collects it with the engine that suits
its size; ``FEATURES`` describes every column and ``FAMILIES`` lists the families it loops over.
The time rule lives in ``features.asof``.
"""

from features.build import build_features, compute_features
from features.catalog import FEATURES, MODEL_FEATURES, FeatureSpec
from features.families import FAMILIES

__all__ = ["FAMILIES", "FEATURES", "MODEL_FEATURES", "FeatureSpec", "build_features", "compute_features"]
