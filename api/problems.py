"""Every error as ``application/problem+json`` (RFC 9457), mapped in one place.

Routers raise :class:`Problem` (or a ``riskengine.core.errors`` exception); FastAPI's own validation and
HTTP errors are converted too, and anything unexpected becomes a 500 problem without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from riskengine.core.errors import RiskEngineError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://riskengine.example/problems/"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}
SLUGS = {
    400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 413: "content-too-large",
    415: "unsupported-media-type", 422: "invalid-input", 429: "too-many-requests", 500: "internal-error",
    503: "unavailable",
}


class Problem(Exception):
    """An error answer: HTTP status, a human ``detail`` and optional extension members."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


def problem_response(request: Request, status: int, detail: str, *, headers: dict[str, str] | None = None,
                     title: str | None = None, **extensions: Any) -> JSONResponse:
    """The problem+json response (``instance`` is the request path, so equal requests get equal bodies)."""
    body = {
        "type": TYPE_BASE + SLUGS.get(status, str(status)),
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def not_found(what: str = "enterprise") -> Problem:
    """The one 404 for both unknown and out-of-scope resources, so scopes cannot be probed."""
    return Problem(404, f"no {what} with this id is available to you")


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append({
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        })
    return out


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route fully answers at the request's path (asked of the routes themselves,
    so routers included in routers count too)."""
    scope = {k: v for k, v in request.scope.items() if k not in ("route", "endpoint", "path_params")}
    return [m for m in METHODS
            if any(route.matches({**scope, "method": m})[0] == Match.FULL for route in app.router.routes)]


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, headers=exc.headers, **exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        loc, msg = ".".join(first["loc"]), str(first["msg"])
        detail = f"{loc}: {msg}" if loc else msg
        return problem_response(request, 422, detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # RFC 9110 §15.5.6: Allow lists every method of the resource
            allowed = allowed_methods(app, request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; use {' or '.join(allowed)}"
        return problem_response(request, exc.status_code, detail, headers=headers or None)

    @app.exception_handler(RiskEngineError)
    async def _engine(request: Request, exc: RiskEngineError) -> JSONResponse:
        status = exc.http_status
        if status >= 500 and status != 503:
            log.exception("engine error on %s", request.url.path, exc_info=exc)
            return problem_response(request, 500, "the request could not be completed")
        return problem_response(request, status, str(exc), title=exc.title)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path, exc_info=exc)
        return problem_response(request, 500, "the request could not be completed")


# OpenAPI description of the problem responses each route may give.
def problem_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem+json answers (429 wherever a key is checked:
    failed keys are throttled)."""
    if 401 in statuses and 429 not in statuses:
        statuses = (*statuses, 429)
    return {
        s: {
            "description": TITLES.get(s, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for s in statuses
    }
