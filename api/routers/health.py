"""Liveness and Prometheus metrics (no enterprise data, so no key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import ServiceDep, SnapshotDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness and what is loaded")
async def healthz(snapshot: SnapshotDep) -> Health:
    return Health(status="ok", as_of=snapshot.as_of, grades=snapshot.grades.height,
                  model_version=snapshot.model_version)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
async def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
