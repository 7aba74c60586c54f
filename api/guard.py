"""Limits that protect the server before any work is done for a caller.

``AuthBeforeBodyMiddleware``: a ``/v1`` request that carries a body is authenticated before a byte of
the body is read, so an unauthenticated client cannot make the server receive, buffer or parse
anything (401 at once). Then the body's size is checked, still before parsing: from
``Content-Length`` here (413 at once), and while the body streams by Starlette's
``RequestBodyLimitMiddleware`` (a body longer than it said, or chunked, stops at the limit with 413).
FastAPI's own ``max_body_size`` is not used because it sits outside every middleware, before
authentication.
"""

from __future__ import annotations

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import verify_bearer
from api.problems import Problem, problem_response


def _body_length(scope: Scope) -> int | None:
    """The declared body length: None without a body, -1 for a body of unknown length (chunked)."""
    length: int | None = None
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return -1
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
    return length if length else None


class AuthBeforeBodyMiddleware:
    """Authenticate ``/v1`` requests with a body before reading it, then limit its size (see above)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.app = app
        self.limited = RequestBodyLimitMiddleware(app, max_body_size=max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _body_length(scope) if scope["type"] == "http" else None
        if length is None or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await verify_bearer(request, scope["app"].state.service, request.headers.get("authorization"))
            if length > self.max_body_bytes:
                raise Problem(413, f"the request body may be at most {self.max_body_bytes:,} bytes; "
                                   f"this one says {length:,}")
        except Problem as exc:
            response = problem_response(request, exc.status, exc.detail, headers=exc.headers,
                                        **exc.extensions)
            # The body is not wanted: close the connection rather than read it to reuse the connection.
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        await self.limited(scope, receive, send)
