"""What-if scoring for the credit office: up to ``service.max_batch`` enterprises per request."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from fastapi import APIRouter, Request

from api.deps import Now, ServiceDep, SnapshotDep, WhatIf, check_enterprise_id
from api.problems import Problem, problem_docs
from api.schemas import ScoredItem, ScoreRequest, ScoreResponse
from features import FEATURES
from models.scoring import enterprise_features, score_features
from riskengine.core.errors import FatalInputError, ModelError, UsageError
from riskengine.lake.layout import load_tables

router = APIRouter(prefix="/v1", tags=["scoring"])

_POLARS = {"int": pl.Float64, "float": pl.Float64, "str": pl.String}


def feature_frame(rows: list[dict[str, Any]], as_of: date) -> pl.DataFrame:
    """Feature rows → a full feature frame: every catalog column, the no-event value where not given."""

    allowed = set(FEATURES) | {"enterprise_id", "name", "district", "sector"}
    columns: dict[str, list[Any]] = {"enterprise_id": [], "as_of": []}
    for name in FEATURES:
        columns[name] = []
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - allowed)
        if unknown:
            raise Problem(422, f"features[{i}]: unknown feature(s) {', '.join(unknown)}")
        eid = row.get("enterprise_id")
        columns["enterprise_id"].append(str(eid) if eid not in (None, "") else f"row-{i}")
        columns["as_of"].append(as_of)
        for name, spec in FEATURES.items():
            value = row.get(name, spec.fill)
            if spec.dtype == "str":
                value = None if value is None else str(value)
            elif value is not None:
                if isinstance(value, str):
                    try:
                        value = float(value)
                    except ValueError:
                        raise Problem(
                            422, f"features[{i}].{name}: expected a number; got {value!r}"
                        ) from None
                value = float(value)
                if value != value or value in (float("inf"), float("-inf")):
                    raise Problem(422, f"features[{i}].{name}: expected a finite number; got {value!r}")
            columns[name].append(value)
    schema = {"enterprise_id": pl.String, "as_of": pl.Date,
              **{n: _POLARS.get(s.dtype, pl.Float64) for n, s in FEATURES.items()}}
    frame = pl.DataFrame(columns, schema=schema)  # type: ignore[arg-type]
    if frame["enterprise_id"].is_duplicated().any():
        raise Problem(422, "features: each row needs a distinct enterprise_id")
    return frame


def _by_ids(ids: list[str], as_of: date, lake: Path | None) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Features (and profiles) of the given enterprises, built from the lake at as_of."""
    if lake is None:
        raise Problem(503, "scoring by enterprise id needs the lake: start the service with "
                           "`riskengine serve --lake LAKE`")

    tables = load_tables(lake)
    wanted = pl.Series(ids, dtype=pl.String)
    profiles = (tables["enterprises"].filter(pl.col("enterprise_id").is_in(wanted.implode()))
                .select("enterprise_id", "name", "district", "sector").collect())
    features = enterprise_features(tables, as_of, wanted) if profiles.height else pl.DataFrame()
    found = set(features["enterprise_id"].to_list()) if features.height else set()
    return features, profiles, [i for i in ids if i not in found]


@router.post("/score", name="whatif_score",
             response_model=ScoreResponse, summary="What-if scoring (credit office)",
             responses=problem_docs(401, 403, 413, 422, 503))
def post_score(request: Request, principal: WhatIf, body: ScoreRequest, snapshot: SnapshotDep,
               service: ServiceDep, now: Now) -> ScoreResponse:
    """Grade up to ``max_batch`` enterprises with the served model: by id (fresh features from the lake)
    or by feature rows (what the grade would be with these facts). Nothing is stored."""
    if (body.enterprise_ids is None) == (body.features is None):
        raise Problem(422, "give either enterprise_ids or features")
    n = len(body.enterprise_ids if body.enterprise_ids is not None else body.features or [])
    limit = service.settings.service.max_batch
    if n > limit:
        raise Problem(413, f"at most {limit} enterprises per request; got {n}")
    if n == 0:
        raise Problem(422, "the batch is empty")
    model = snapshot.model
    if model is None:
        raise Problem(503, "no champion model is loaded; train and promote one, then POST /v1/admin/reload")
    as_of = body.as_of or snapshot.as_of or now.date()

    try:
        if body.enterprise_ids is not None:
            ids = list(dict.fromkeys(body.enterprise_ids))
            for i, eid in enumerate(ids):
                problem = check_enterprise_id(service, eid)
                if problem:
                    raise Problem(422, f"enterprise_ids[{i}]: {problem}")
            features, profiles, missing = _by_ids(ids, as_of, service.settings.service.lake_path)
            graded = (score_features(model, features, settings=service.settings, enterprises=profiles)
                      if features.height else None)
        else:
            frame = feature_frame(body.features or [], as_of)
            missing = []
            graded = score_features(model, frame, settings=service.settings)
    except (ModelError, FatalInputError, UsageError) as exc:
        raise Problem(422, f"cannot score these rows: {exc}") from None
    items = []
    if graded is not None:
        for r in graded.iter_rows(named=True):
            items.append(ScoredItem(
                enterprise_id=r["enterprise_id"], probability=r["probability"], score=r["score"],
                grade=r["grade"], model_grade=r["model_grade"], rule=r["rule"], reasons=r["reasons"] or [],
            ))
    request.state.audit_detail = f"rows={n} scored={len(items)}"
    return ScoreResponse(as_of=as_of, model_version=str(model.version), items=items, not_found=missing)
