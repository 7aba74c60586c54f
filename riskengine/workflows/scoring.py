"""Scoring a lake: load the lake and the serving store, grade with ``models.scoring``, save files.

``score_enterprises`` grades every active enterprise of a lake at one as_of (the champion model by
default, the previous grades from the serving store when there are any); ``explain_enterprise``
grades one and decomposes its score; ``read_grades`` / ``write_grades`` are the grades files.
The computing happens on frames in ``models.scoring``; this module only reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.artifact import CreditModel
from models.reason_groups import check_contributions
from models.reasons import explain_groups
from models.registry import load_model
from models.scoring import (
    NO_CHAMPION,
    _settings,
    active_enterprises,
    add_rule_columns,
    enterprise_features,
    score_features,
    severity_parts_for,
)
from riskengine.core import exports
from riskengine.core.config import Settings
from riskengine.core.errors import ModelError, NotFoundError, UsageError
from riskengine.core.files import atomic_write
from riskengine.core.store import Store
from riskengine.lake.layout import load_tables
from riskengine.workflows.reports.excel import write_grades_excel


def load_champion(settings: Settings | None = None) -> CreditModel:
    """The registered champion, or ``ModelError`` telling the user how to get one."""
    try:
        return load_model("champion", settings=settings)
    except (ModelError, NotFoundError) as exc:
        raise ModelError(f"{NO_CHAMPION} ({exc})") from exc


def score_enterprises(
    lake: Path,
    as_of: date,
    model: CreditModel | None = None,
    previous: pl.DataFrame | None = None,
    settings: Settings | None = None,
) -> pl.DataFrame:
    """Grade every active enterprise of ``lake`` as of ``as_of`` (grades frame, one row each).

    Without ``model`` the registered champion is used; without ``previous`` the latest grades
    before as_of in the serving store (if any) anchor the stable regrading.
    """
    settings = _settings(settings)
    tables = load_tables(Path(lake))
    if model is None:
        model = load_champion(settings)
    active = active_enterprises(tables, as_of)
    features = enterprise_features(tables, as_of, active["enterprise_id"])
    if previous is None:
        previous = previous_from_store(settings, as_of)
    return score_features(model, features, previous, settings, enterprises=active, tables=tables)


# --- one enterprise, explained ------------------------------------------------------------------------


@dataclass
class Explanation:
    """One enterprise's grade and the full SHAP decomposition of its raw margin.

    ``row`` is its grades-frame row; ``contributions[i]`` belongs to ``feature_names[i]`` (whose
    value is ``values[i]``); ``base_value`` (the bias) plus all contributions equals ``raw``.
    ``groups`` sums them into reasons (``models.reasons.explain_groups``: ``code``, ``kind``,
    ``contribution``, ``text_zh``, ``text_en``), which with the bias add up to ``raw`` too;
    ``baseline_driven`` says whether the baseline outweighs the own record.
    """

    row: dict[str, Any]
    feature_names: list[str]
    values: list[Any]
    contributions: np.ndarray
    base_value: float
    raw: float
    groups: pl.DataFrame
    baseline_driven: bool


def explain_enterprise(
    lake: Path,
    enterprise_id: str,
    as_of: date,
    model: CreditModel | None = None,
    previous: pl.DataFrame | None = None,
    settings: Settings | None = None,
) -> Explanation:
    """Grade one enterprise of ``lake`` as of ``as_of`` and decompose its score.

    Raises ``NotFoundError`` when the enterprise is not in the lake, or is not graded at that date
    (established on/after as_of, or not active).
    """
    settings = _settings(settings)
    tables = load_tables(Path(lake))
    found = (tables["enterprises"].filter(pl.col("enterprise_id") == enterprise_id)
             .select("enterprise_id", "name", "district", "sector", "established_on", "status").collect())
    if found.height == 0:
        raise NotFoundError(f"no enterprise {enterprise_id} in the lake {lake}")
    info = found.row(0, named=True)
    if info["established_on"] is not None and info["established_on"] >= as_of:
        raise NotFoundError(f"enterprise {enterprise_id} was established on {info['established_on']}: "
                            f"it has no grade as of {as_of}")
    if info["status"] != "active":
        raise NotFoundError(f"enterprise {enterprise_id} has status {info['status']!r}: only active "
                            "enterprises are graded")
    if model is None:
        model = load_champion(settings)
    features = enterprise_features(tables, as_of, found["enterprise_id"])
    if features.height != 1:
        raise NotFoundError(f"enterprise {enterprise_id}: no feature row as of {as_of}")
    if previous is None:
        previous = previous_from_store(settings, as_of)
    graded = score_features(model, features, previous, settings, enterprises=found, tables=tables)
    contrib = model.contributions(features)
    raw = float(model.predict_raw(features)[0])
    check_contributions(contrib, np.array([raw]))
    names = list(model.feature_names)
    features = add_rule_columns(features, tables)
    groups, base, driven = explain_groups(features, names, contrib, nuisance=getattr(model, "nuisance", ()),
                                          severity_parts=severity_parts_for(features, tables))
    values = [features[c][0] if c in features.columns else None for c in names]
    return Explanation(row=graded.row(0, named=True), feature_names=names, values=values,
                       contributions=np.asarray(contrib[0, :-1], dtype=np.float64),
                       base_value=float(base[0]), raw=raw, groups=groups.drop("_row"),
                       baseline_driven=bool(driven[0]))


# --- previous grades ------------------------------------------------------------------------------


def previous_from_store(settings: Settings, as_of: date) -> pl.DataFrame | None:
    """The latest grades saved in the serving store before ``as_of``, or None (no store yet)."""
    path = Path(settings.store_file)
    if not path.exists():
        return None
    store = Store(path)
    try:
        frame = _latest_before(store, as_of)
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()
    if frame is None or frame.height == 0:
        return None
    return frame


def _latest_before(store: Any, as_of: date) -> pl.DataFrame | None:
    """Ask the store for its latest graded as_of strictly before ``as_of``."""
    dates = getattr(store, "grade_dates", None)
    if callable(dates):
        earlier = [d for d in dates() if d < as_of]
        return store.latest_grades(max(earlier)) if earlier else None
    frame = store.latest_grades()
    if frame is None or frame.height == 0:
        return None
    if "as_of" in frame.columns and frame["as_of"].max() >= as_of:
        return None
    return frame


def read_grades(path: Path) -> pl.DataFrame:
    """A grades file written by ``riskengine score`` (Parquet or CSV) — for ``--previous``."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such grades file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix == ".csv":
            frame = pl.read_csv(path, infer_schema_length=0)
        else:
            raise UsageError(f"{path}: a previous grades file must end .parquet or .csv")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise UsageError(f"{path}: cannot read grades ({exc})") from exc
    missing = [c for c in ("enterprise_id", "grade") if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: grades file lacks column(s) {', '.join(missing)}")
    return frame


def write_grades(grades: pl.DataFrame, out: Path) -> Path:
    """Write the grades frame atomically: Parquet, CSV (reasons as JSON) or Excel (Chinese headers)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv", ".xlsx"):
        raise UsageError(f"{out}: output must end .parquet, .csv or .xlsx")

    def write(tmp: Path) -> None:
        if suffix == ".parquet":
            grades.write_parquet(tmp)
        elif suffix == ".csv":
            exports.write_csv(exports.flat(grades, reasons="json"), tmp, bom=False)
        else:
            write_grades_excel(exports.flat(grades, reasons="lines"), tmp)

    return atomic_write(out, write)

