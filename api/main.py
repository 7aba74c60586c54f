"""The app factory: ``create_app()`` builds the FastAPI app; ``lifespan`` loads the store and the champion
model once at start and writes the pending audit entries at shutdown.

``riskengine serve`` runs ``uvicorn api.main:create_app --factory``. Tests pass a ready ``Service``
(fake model, temporary store) and exercise the real app over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi

from api import problems, ui
from api.guard import AuthBeforeBodyMiddleware
from api.metrics import ObserveMiddleware
from api.routers import admin, cases, credit_record, enterprises, health, plans, scoring, sectors, warnings
from api.schemas import ProblemDetails
from api.state import Service
from riskengine.core.config import Settings

DESCRIPTION = """Credit-risk grades (A low … D high risk), their reasons, supervision frequencies and the
monthly 双随机 inspection plan, for inspectors, the credit office and pilot-sector partners.

Grades are internal and confidential: every key has a role and a scope, an enterprise outside your
scope answers exactly like one that does not exist (404), and every access is audited.
Send `Authorization: Bearer KEY` (keys come from `riskengine keys create`). Errors are
`application/problem+json` (RFC 9457)."""


def create_app(settings: Settings | None = None, service: Service | None = None, *,
               manage_service: bool = True) -> FastAPI:
    """The service app. Without ``service``, one is built from ``settings`` (default: the environment).
    ``manage_service=False`` leaves starting and closing the service to the caller (the lifespan then
    does nothing, e.g. for test clients that run it around every request)."""
    service = service or Service(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not manage_service:
            yield
            return
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="riskengine",
        version="1",
        summary="Scoped, audited access to enterprise credit-risk grades",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.service = service
    problems.install(app)
    ui.install(app, service)
    app.add_middleware(ui.CsrfMiddleware, service=service)
    app.add_middleware(AuthBeforeBodyMiddleware, max_body_bytes=service.settings.service.max_body_bytes)
    app.add_middleware(ObserveMiddleware)  # added last: outermost, so it sees and audits every answer
    for module in (enterprises, credit_record, plans, sectors, scoring, cases, warnings, admin, health):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["ProblemDetails"] = ProblemDetails.model_json_schema(
                ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
