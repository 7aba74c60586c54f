"""The web pages for inspectors, the credit office and sector partners (CONTRACT §7), served by the
same app as the API under ``/ui/``: server-rendered Jinja2 templates, assets served locally.

``install(app)`` adds the pages, their static files, the session book and the HTML error pages
(for paths under /ui/ only; the API keeps problem+json). ``CsrfMiddleware`` protects every form post
under /ui/ with asgi-csrf (signed double-submit token in a hidden field); requests elsewhere pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from asgi_csrf import asgi_csrf
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import Problem
from api.state import Service
from api.ui import case_pages, watch_pages
from api.ui.auth import LoginRequired, PageForbidden, SessionBook
from api.ui.pages import router
from api.ui.render import language, render
from riskengine.core.errors import RiskEngineError

PREFIX = "/ui/"
_OUTER = "riskengine.outer_scope"
MESSAGES = {
    401: ("请先登录。", "Please sign in."),
    403: ("您的角色无权查看此页面。", "Your role may not open this page."),
    404: ("未找到，或不在您的查看范围内。", "Not found, or not available to you."),
    409: ("操作与当前状态冲突：", "This conflicts with the current state: "),
    422: ("输入有误：", "Invalid input: "),
    503: ("服务暂时不可用，请稍后再试。", "The service is busy; try again shortly."),
}


class CsrfMiddleware:
    """asgi-csrf around the app, for paths under /ui/ (the API authenticates by bearer key, which a
    browser never sends on its own). Tokens and their cookie: SameSite=Strict, Secure if configured."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        ui = service.settings.ui

        async def inner(scope: Scope, receive: Receive, send: Send) -> None:
            # asgi-csrf hands a copy of the scope on: give the matched route back to the observer,
            # which audits when the response starts.
            outer = scope.get(_OUTER)

            async def send_route(message: Message) -> None:
                if outer is not None and "route" in scope:
                    outer["route"] = scope["route"]
                await send(message)

            await app(scope, receive, send_route)

        self.max_form_bytes = ui.max_form_bytes
        self.app = asgi_csrf(
            inner, signing_secret=ui.csrf_secret, cookie_secure=ui.cookie_secure, cookie_samesite="Strict",
            cookie_path="/ui", always_protect={"/ui/login", "/ui/logout"},
            skip_if_scope=lambda scope: not scope["path"].startswith(PREFIX),
            send_csrf_failed=_csrf_failed,
        )

        # Forms are small: asgi-csrf reads a whole form body before checking its token, so a body is
        # limited first (declared length at once, streamed length as it arrives).
        self.limited = RequestBodyLimitMiddleware(self.app, max_body_size=self.max_form_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[_OUTER] = scope
        if not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        length = _declared_length(scope)
        if length is not None and (length < 0 or length > self.max_form_bytes):
            await _refuse(send, 413, "表单过大。", "The form is too large.")
            return
        await self.limited(scope, receive, send)


def _declared_length(scope: Scope) -> int | None:
    """The body's declared length: None without one, -1 for a chunked body."""
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return -1
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


async def _refuse(send: Send, status: int, zh: str, en: str) -> None:
    body = f"<!doctype html><meta charset=utf-8><title>{status}</title><p>{zh}</p><p>{en}</p>"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store"),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body.encode("utf-8")})


async def _csrf_failed(scope: Scope, send: Send, message_id: Any) -> None:
    await _refuse(send, 403, "表单已失效或来源不明，请返回重新提交。",
                  "The form expired or did not come from this site; go back and submit it again.")


def error_page(request: Request, status: int, detail: str | None = None) -> Response:
    """The HTML error page; a 404 says the same for unknown and out-of-scope (no detail shown)."""
    zh, en = MESSAGES.get(status, ("请求未能完成。", "The request could not be completed."))
    shown = detail if status in (409, 422) and detail else ""
    message = (zh if language(request) == "zh" else en) + shown
    return render(request, "error.html", {"status": status, "heading": str(status), "message": message},
                  status=status)


Handler = Callable[[Request, Any], Awaitable[Response]]


def _for_pages(api_handler: Handler, status_of: Callable[[Any], tuple[int, str | None]]) -> Handler:
    async def handler(request: Request, exc: Any) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await api_handler(request, exc)
        status, detail = status_of(exc)
        return error_page(request, status, detail)

    return handler


def install(app: FastAPI, service: Service) -> None:
    """Add the pages to the service's app (after ``api.problems.install``)."""
    app.state.ui_sessions = SessionBook(service)
    app.mount("/ui/static", StaticFiles(directory=Path(__file__).parent / "static"), name="ui_static")
    app.include_router(router)
    app.include_router(watch_pages.router)
    app.include_router(case_pages.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/ui/login?next={quote(exc.next_path, safe='')}", status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        return error_page(request, 403)

    def engine_status(exc: RiskEngineError) -> tuple[int, str | None]:
        status = exc.http_status if exc.http_status < 500 or exc.http_status == 503 else 500
        return status, str(exc)

    for exc_class, status_of in (
        (Problem, lambda e: (e.status, e.detail)),
        (StarletteHTTPException, lambda e: (e.status_code, None)),
        (RequestValidationError, lambda e: (422, "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())[1:])}: {err.get('msg')}" for err in e.errors()))),
        (RiskEngineError, engine_status),
        (Exception, lambda e: (500, None)),
    ):
        api_handler = app.exception_handlers[exc_class]
        app.exception_handlers[exc_class] = _for_pages(api_handler, status_of)  # type: ignore[arg-type]
