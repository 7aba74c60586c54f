"""Scoring: features → calibrated probability → score → grade (+ hard rules, hysteresis) → reasons.

``score_features`` grades a feature frame with a ``CreditModel``; ``score_enterprises`` does the
whole path for a lake at one as_of (every active enterprise, the champion model by default, the
previous grades from the serving store when there are any). Both return the *grades frame* of
CONTRACT section 3:

    enterprise_id, as_of, name, district, sector, probability, score, grade, model_grade, rule,
    reasons, model_version

Work runs in chunks of ``CHUNK_ROWS`` rows so that the contribution matrix (rows × features × 8
bytes) stays a few hundred MB even for 2,000,000 enterprises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from features.asof import exists
from models.grading import F_ORDERED_HIGH_RECALLS, HARD_RULES, apply_grading, score_from_probability
from models.reasons import _spec_texts, build_reasons, check_contributions, format_fact
from riskengine.contract import GRADES_SCHEMA
from riskengine.errors import ModelError, NotFoundError, UsageError
from riskengine.files import atomic_write
from riskengine.progress import progress

if TYPE_CHECKING:
    from models.artifact import CreditModel
    from riskengine.config import Settings

CHUNK_ROWS = 250_000
NO_CHAMPION = "no champion model: run `riskengine train` then `riskengine promote`"


# Column headers of the officers' Excel list.
HEADERS_ZH = {
    "enterprise_id": "统一社会信用代码", "as_of": "评价基准日", "name": "企业名称", "district": "行政区划",
    "sector": "行业", "probability": "不良结果概率", "score": "风险分值", "grade": "信用风险等级",
    "model_grade": "模型等级", "rule": "适用规则", "reasons": "主要原因", "model_version": "模型版本",
}


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from riskengine.config import get_settings

    return get_settings()


def _rule_texts() -> dict[str, tuple[str, str]]:
    return {r.id: (r.text_zh, r.text_en) for r in HARD_RULES}


def _profile_columns(features: pl.DataFrame, enterprises: pl.DataFrame | None) -> pl.DataFrame:
    """name / district / sector for each feature row: from ``enterprises`` or the feature frame."""
    ids = features.select(pl.col("enterprise_id").cast(pl.String))
    if enterprises is not None:
        cols = [c for c in ("name", "district", "sector") if c in enterprises.columns]
        info = enterprises.select(pl.col("enterprise_id").cast(pl.String),
                                  *[pl.col(c).cast(pl.String) for c in cols]).unique("enterprise_id")
        out = ids.join(info, on="enterprise_id", how="left", maintain_order="left")
    else:
        exprs = []
        for name in ("name", "district", "sector"):
            for candidate in (name, f"profile__{name}"):
                if candidate in features.columns:
                    exprs.append(pl.col(candidate).cast(pl.String).alias(name))
                    break
        out = pl.concat([ids, features.select(exprs)], how="horizontal")
    for name in ("name", "district", "sector"):
        if name not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    return out.select("name", "district", "sector")


def ordered_high_hazard_recalls(tables: Mapping[str, pl.LazyFrame], as_of: list[date]) -> pl.LazyFrame:
    """Ordered recalls of high-hazard products in the last 365 days, per (enterprise_id, as_of).

    Hard rule R4 needs both conditions on the *same* recall. ``build_features`` provides this column;
    this computes it for feature frames made without it. The time rule comes from
    ``features.asof`` like every feature.
    """
    from features import asof

    pairs = asof.window(tables["recalls"], "announced_on", as_of, 365)
    return (pairs.filter((pl.col("mode") == "ordered") & (pl.col("hazard") == "high"))
            .group_by(asof.KEY, asof.AS_OF).agg(pl.len().cast(pl.Int64).alias(F_ORDERED_HIGH_RECALLS)))


def add_rule_columns(features: pl.DataFrame, tables: Mapping[str, pl.LazyFrame] | None = None
                     ) -> pl.DataFrame:
    """Add the hard rules' inputs that the feature pipeline does not produce itself.

    With the event tables the ordered-high-hazard recall count is exact; without them (scoring a
    bare feature frame) it is ``min(ordered recalls, high-hazard recalls)`` over 365 days, which can
    only err towards applying R4 (an ordered low-hazard and a voluntary high-hazard recall).
    """
    if F_ORDERED_HIGH_RECALLS in features.columns:
        return features
    if tables is not None:
        dates = features["as_of"].unique().to_list()
        counts = ordered_high_hazard_recalls(tables, dates).collect() if dates else None
        if counts is not None:
            return features.join(counts, on=["enterprise_id", "as_of"], how="left",
                                 maintain_order="left").with_columns(
                pl.col(F_ORDERED_HIGH_RECALLS).fill_null(0))
    parts = [c for c in ("recalls__ordered_365d", "recalls__high_hazard_365d") if c in features.columns]
    if len(parts) < 2:
        return features  # rule_flags will name the missing column
    return features.with_columns(
        pl.min_horizontal(parts).fill_null(0).cast(pl.Int64).alias(F_ORDERED_HIGH_RECALLS))


def _chunk(model: CreditModel, features: pl.DataFrame, previous: pl.DataFrame | None,
           settings: Settings, catalog: Mapping[str, Any] | None) -> pl.DataFrame:
    raw = model.predict_raw(features)
    calibrator = getattr(model, "calibrator", None)
    prob = calibrator(raw) if callable(calibrator) else model.predict_proba(features)
    contrib = model.contributions(features)
    check_contributions(contrib, raw)
    meta = getattr(model, "metadata", None) or {}
    score = score_from_probability(prob, base_rate=meta.get("score_base_rate"))
    # A model trained with population bands (policy [grades]) carries its edges; else Settings'.
    edges = meta.get("band_edges") or settings.grades.band_edges
    graded = apply_grading(features["enterprise_id"], score, features, previous,
                           edges=edges, hysteresis=settings.grades.hysteresis)
    reasons = build_reasons(features, model.feature_names, contrib, catalog=catalog,
                            nuisance=getattr(model, "nuisance", ()), fired=graded["fired"],
                            rule_texts=_rule_texts())
    return pl.DataFrame({
        "probability": pl.Series(prob, dtype=pl.Float64),
        "score": pl.Series(score, dtype=pl.Int64),
        "grade": graded["grade"],
        "model_grade": graded["model_grade"],
        "rule": graded["rule"],
        "reasons": reasons,
    })


def score_features(
    model: CreditModel,
    features: pl.DataFrame,
    previous: pl.DataFrame | None = None,
    settings: Settings | None = None,
    *,
    enterprises: pl.DataFrame | None = None,
    tables: Mapping[str, pl.LazyFrame] | None = None,
    catalog: Mapping[str, Any] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> pl.DataFrame:
    """Grade every row of a feature frame (``enterprise_id``, ``as_of`` + feature columns).

    ``previous`` (an earlier grades frame) switches on stable regrading; ``enterprises`` supplies
    name/district/sector (else they come from the feature frame's profile columns, if any);
    ``tables`` (the lake's event tables) make the hard-rule inputs exact (``add_rule_columns``).
    """
    settings = _settings(settings)
    if isinstance(features, pl.LazyFrame):
        features = features.collect()
    for key in ("enterprise_id", "as_of"):
        if key not in features.columns:
            raise ModelError(f"feature frame lacks the key column {key!r}")
    if features["enterprise_id"].is_duplicated().any():
        dup = features.filter(pl.col("enterprise_id").is_duplicated())["enterprise_id"][0]
        raise ModelError(f"feature frame has more than one row for {dup}; score one as_of at a time")
    if chunk_rows <= 0:
        raise UsageError(f"chunk_rows must be a positive integer; got {chunk_rows}")
    if catalog is None:
        from models.reasons import _catalog

        catalog = _catalog()
    features = add_rule_columns(features, tables)
    starts = range(0, features.height, chunk_rows)
    parts = []
    with progress("scoring and explaining", total=features.height) as advance:
        for start in starts:
            part = features.slice(start, chunk_rows)
            parts.append(_chunk(model, part, previous, settings, catalog))
            advance(part.height)
    scored = pl.concat(parts) if parts else pl.DataFrame(schema={
        k: GRADES_SCHEMA[k] for k in ("probability", "score", "grade", "model_grade", "rule", "reasons")})
    out = pl.concat([
        features.select(pl.col("enterprise_id").cast(pl.String), pl.col("as_of").cast(pl.Date)),
        _profile_columns(features, enterprises),
        scored,
    ], how="horizontal").with_columns(pl.lit(str(model.version), dtype=pl.String).alias("model_version"))
    return out.select([pl.col(c).cast(t) for c, t in GRADES_SCHEMA.items()])


# --- the whole path for a lake ---------------------------------------------------------------------


def load_champion(settings: Settings | None = None) -> CreditModel:
    """The registered champion, or ``ModelError`` telling the user how to get one."""
    from models.registry import load_model

    try:
        return load_model("champion", settings=settings)
    except (ModelError, NotFoundError) as exc:
        raise ModelError(f"{NO_CHAMPION} ({exc})") from exc


def active_enterprises(tables: Mapping[str, pl.LazyFrame], as_of: date) -> pl.DataFrame:
    """Enterprises with status ``active`` established before as_of (who gets graded)."""
    return (tables["enterprises"]
            .filter((pl.col("status") == "active") & exists(as_of))
            .select("enterprise_id", "name", "district", "sector")
            .collect())


def enterprise_features(tables: Mapping[str, pl.LazyFrame], as_of: date,
                        ids: pl.Series | None = None) -> pl.DataFrame:
    """The feature rows at as_of, for ``ids`` only when given (all other enterprises still feed the
    features that look across enterprises, e.g. associations and inspector strictness)."""
    from features import compute_features

    frame = compute_features(tables, [as_of])
    if ids is not None:
        frame = frame.filter(pl.col("enterprise_id").is_in(ids.implode()))
    return frame


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
    from riskengine.lake import load_tables

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
    value is ``values[i]``, stated by ``texts_zh[i]``/``texts_en[i]``); ``base_value`` (the bias) plus
    all contributions equals ``raw``.
    """

    row: dict[str, Any]
    feature_names: list[str]
    values: list[Any]
    contributions: np.ndarray
    base_value: float
    raw: float
    texts_zh: list[str]
    texts_en: list[str]


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
    from riskengine.lake import load_tables

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
    contrib = model.contributions(features)[0]
    raw = float(model.predict_raw(features)[0])
    check_contributions(contrib[None, :], np.array([raw]))
    from models.reasons import _catalog

    catalog = _catalog()
    names = list(model.feature_names)
    values = [features[c][0] if c in features.columns else None for c in names]
    texts_zh, texts_en = [], []
    for code, value in zip(names, values, strict=True):
        tzh, ten = _spec_texts(catalog, code)
        texts_zh.append(format_fact(tzh, code, value, "zh"))
        texts_en.append(format_fact(ten, code, value, "en"))
    return Explanation(row=graded.row(0, named=True), feature_names=names, values=values,
                       contributions=np.asarray(contrib[:-1], dtype=np.float64),
                       base_value=float(contrib[-1]), raw=raw, texts_zh=texts_zh, texts_en=texts_en)


# --- previous grades ------------------------------------------------------------------------------


def previous_from_store(settings: Settings, as_of: date) -> pl.DataFrame | None:
    """The latest grades saved in the serving store before ``as_of``, or None (no store yet)."""
    path = Path(settings.store_file)
    if not path.exists():
        return None
    try:
        from riskengine.store import Store
    except ImportError:  # the serving store is optional for scoring
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
            _flat(grades, json_reasons=True).write_csv(tmp)
        else:
            _write_excel(grades, tmp)

    return atomic_write(out, write)


def _flat(grades: pl.DataFrame, *, json_reasons: bool) -> pl.DataFrame:
    """Grades with reasons as one text column: JSON (CSV) or readable lines (Excel)."""
    if json_reasons:
        text = pl.format("[{}]", pl.col("reasons").list.eval(pl.element().struct.json_encode())
                         .list.join(","))
    else:
        text = pl.col("reasons").list.eval(
            pl.format("{} / {}", pl.element().struct.field("text_zh"), pl.element().struct.field("text_en"))
        ).list.join("；\n")
    return grades.with_columns(text.alias("reasons"))


def _write_excel(grades: pl.DataFrame, path: Path) -> None:
    flat = _flat(grades, json_reasons=False).rename(HEADERS_ZH, strict=False)
    flat.write_excel(path, worksheet="信用风险等级", autofilter=True, freeze_panes=(1, 0),
                     autofit=True)


def grade_distribution(grades: pl.DataFrame) -> pl.DataFrame:
    """Count and share of enterprises per grade (all four grades, zeros included)."""
    from riskengine.contract import GRADES

    counts = grades.group_by("grade").len()
    total = max(grades.height, 1)
    return (pl.DataFrame({"grade": list(GRADES)})
            .join(counts, on="grade", how="left")
            .with_columns(pl.col("len").fill_null(0).cast(pl.Int64).alias("count"))
            .select("grade", "count", (pl.col("count") / total).alias("share")))
