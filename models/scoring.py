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
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from features import asof, compute_features
from features.build import severity_parts
from models.grading import (
    BASELINE_CAP_RULE,
    F_ABNORMAL_LISTED,
    F_NOTIFICATION_BREACHED,
    F_ORDERED_HIGH_RECALLS,
    F_SERIOUS_LISTED,
    HARD_RULES,
    apply_grading,
    baseline_cap_texts,
    score_from_probability,
)
from models.reason_groups import cap_eligible, check_contributions, default_catalog, group_contributions
from models.reasons import build_reasons
from riskengine.core import timerule
from riskengine.core.config import get_settings
from riskengine.core.contract import GRADES, GRADES_SCHEMA
from riskengine.core.errors import ModelError, UsageError
from riskengine.core.progress import progress
from riskengine.supervision.policy import load_policy

if TYPE_CHECKING:
    from models.artifact import CreditModel
    from riskengine.core.config import Settings

CHUNK_ROWS = 250_000
NO_CHAMPION = "no champion model: run `riskengine train` then `riskengine promote`"


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings

    return get_settings()


def _rule_texts(baseline_cap: str | None = None) -> dict[str, tuple[str, str]]:
    texts = {r.id: (r.text_zh, r.text_en) for r in HARD_RULES}
    if baseline_cap is not None:
        texts[BASELINE_CAP_RULE] = baseline_cap_texts(baseline_cap)
    return texts


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

    pairs = asof.window(tables["recalls"], "announced_on", as_of, 365)
    return (pairs.filter((pl.col("mode") == "ordered") & (pl.col("hazard") == "high"))
            .group_by(asof.KEY, asof.AS_OF).agg(pl.len().cast(pl.Int64).alias(F_ORDERED_HIGH_RECALLS)))


CREDIT_RULE_COLUMNS = (F_SERIOUS_LISTED, F_ABNORMAL_LISTED, F_NOTIFICATION_BREACHED)


def add_rule_columns(features: pl.DataFrame, tables: Mapping[str, pl.LazyFrame] | None = None
                     ) -> pl.DataFrame:
    """Add the hard rules' inputs that the feature pipeline does not produce itself.

    With the event tables the ordered-high-hazard recall count is exact; without them (scoring a
    bare feature frame) it is ``min(ordered recalls, high-hazard recalls)`` over 365 days, which can
    only err towards applying R4 (an ordered low-hazard and a voluntary high-hazard recall).
    """
    # A feature frame built before the credit lists existed has no list or commitment columns: its
    # source had none, so none is in force.
    missing = [c for c in CREDIT_RULE_COLUMNS if c not in features.columns]
    if missing:
        features = features.with_columns(pl.lit(0, dtype=pl.Int64).alias(c) for c in missing)
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


def severity_parts_for(features: pl.DataFrame, tables: Mapping[str, pl.LazyFrame] | None
                       ) -> pl.DataFrame | None:
    """The severity index's parts by table on ``features``' rows (zeros where nothing is on record), for
    explanations to word the index by its records; None without the event tables."""
    if tables is None or features.height == 0:
        return None
    parts = severity_parts(tables, features["as_of"].unique().to_list())
    cols = [c for c in parts.columns if c not in ("enterprise_id", "as_of")]
    return (features.select(pl.col("enterprise_id").cast(pl.String), pl.col("as_of").cast(pl.Date))
            .join(parts.with_columns(pl.col("enterprise_id").cast(pl.String)), on=["enterprise_id", "as_of"],
                  how="left", maintain_order="left")
            .select([pl.col(c).fill_null(0.0) for c in cols]))


def _chunk(model: CreditModel, features: pl.DataFrame, previous: pl.DataFrame | None,
           settings: Settings, catalog: Mapping[str, Any] | None,
           parts: pl.DataFrame | None = None, baseline_cap: str | None = None) -> pl.DataFrame:
    raw = model.predict_raw(features)
    calibrator = getattr(model, "calibrator", None)
    prob = calibrator(raw) if callable(calibrator) else model.predict_proba(features)
    contrib = model.contributions(features)
    check_contributions(contrib, raw)
    meta = getattr(model, "metadata", None) or {}
    score = score_from_probability(prob, base_rate=meta.get("score_base_rate"))
    # A model trained with population bands (policy [grades] shares) carries its edges; else Settings'.
    edges = meta.get("band_edges") or settings.grades.band_edges
    nuisance = getattr(model, "nuisance", ())
    groups = group_contributions(features, model.feature_names, contrib, catalog=catalog, nuisance=nuisance,
                                 severity_parts=parts)
    graded = apply_grading(features["enterprise_id"], score, features, previous,
                           edges=edges, hysteresis=settings.grades.hysteresis,
                           baseline_cap=baseline_cap,
                           cap_eligible=cap_eligible(features, groups) if baseline_cap is not None else None)
    reasons = build_reasons(features, model.feature_names, contrib, catalog=catalog, nuisance=nuisance,
                            fired=graded["fired"], rule_texts=_rule_texts(baseline_cap), groups=groups)
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
    baseline_cap: str | None | Literal["policy"] = "policy",
) -> pl.DataFrame:
    """Grade every row of a feature frame (``enterprise_id``, ``as_of`` + feature columns).

    ``previous`` (an earlier grades frame) switches on stable regrading; ``enterprises`` supplies
    name/district/sector (else they come from the feature frame's profile columns, if any);
    ``tables`` (the lake's event tables) make the hard-rule inputs exact (``add_rule_columns``) and
    split the severity index by table for the reasons. ``baseline_cap`` is the policy's cap on grades
    the baseline alone sets (``"policy"``: from the policy file; None: no cap).
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
        catalog = default_catalog()
    features = add_rule_columns(features, tables)
    if baseline_cap == "policy":
        baseline_cap = load_policy(settings.policy_path).baseline_cap
    sev = severity_parts_for(features, tables)
    starts = range(0, features.height, chunk_rows)
    parts = []
    with progress("scoring and explaining", total=features.height) as advance:
        for start in starts:
            part = features.slice(start, chunk_rows)
            parts.append(_chunk(model, part, previous, settings, catalog,
                                None if sev is None else sev.slice(start, chunk_rows), baseline_cap))
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


def active_enterprises(tables: Mapping[str, pl.LazyFrame], as_of: date) -> pl.DataFrame:
    """Enterprises with status ``active`` established before as_of (who gets graded)."""
    return (tables["enterprises"]
            .filter((pl.col("status") == "active") & timerule.exists(as_of))
            .select("enterprise_id", "name", "district", "sector")
            .collect())


def enterprise_features(tables: Mapping[str, pl.LazyFrame], as_of: date,
                        ids: pl.Series | None = None) -> pl.DataFrame:
    """The feature rows at as_of, for ``ids`` only when given (all other enterprises still feed the
    features that look across enterprises, e.g. associations and inspector strictness)."""

    frame = compute_features(tables, [as_of])
    if ids is not None:
        frame = frame.filter(pl.col("enterprise_id").is_in(ids.implode()))
    return frame


def grade_distribution(grades: pl.DataFrame) -> pl.DataFrame:
    """Count and share of enterprises per grade (all four grades, zeros included)."""

    counts = grades.group_by("grade").len()
    total = max(grades.height, 1)
    return (pl.DataFrame({"grade": list(GRADES)})
            .join(counts, on="grade", how="left")
            .with_columns(pl.col("len").fill_null(0).cast(pl.Int64).alias("count"))
            .select("grade", "count", (pl.col("count") / total).alias("share")))
