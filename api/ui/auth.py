"""Who is looking at a page: the sign-in session behind the cookie, checked on every request.

``SessionBook`` keeps the sessions of this process in memory in front of the store (``riskengine.
sessions``): a request costs no store access except to write the last use at most every
``ui.touch_seconds`` (so the idle limit holds across restarts within that margin). A session is
refused when it was signed out, is idle or too old, or its key was revoked meanwhile.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import AuthPrincipal, Now, ServiceDep
from api.state import Service
from riskengine.core.keys import key_id_of, token_matches
from riskengine.core.store import KeyRecord
from riskengine.core.store.sessions import (
    KEY_REVOKED,
    SIGNED_OUT,
    SessionRecord,
    SessionStore,
    hash_session_token,
)

COOKIE = "rk_session"
COOKIE_PATH = "/ui"


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """A signed-in role without the right a page needs (the API's 403)."""

    def __init__(self, right: str) -> None:
        super().__init__(right)
        self.right = right


class SessionBook:
    """The sign-in sessions: created at sign-in, checked on every page, ended at sign-out."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = SessionStore(service.store)
        ui = service.settings.ui
        self.idle = timedelta(minutes=ui.session_idle_minutes)
        self.absolute = timedelta(hours=ui.session_hours)
        self.touch_every = timedelta(seconds=ui.touch_seconds)
        self._live: dict[str, tuple[SessionRecord, datetime]] = {}  # hash -> (record, last written)
        self._lock = threading.Lock()

    def key_for(self, token: str) -> KeyRecord | None:
        """The active key a signing-in person typed, or None (same checks as the API's bearer)."""
        key_id = key_id_of(token.strip())
        if key_id is None:
            return None
        record = self.service.keys.get(key_id) or self.service.keys.lookup_missing(key_id)
        if record is None or not token_matches(record, token.strip()) or not record.active:
            return None
        return record

    def open(self, key: KeyRecord, now: datetime) -> tuple[SessionRecord, str]:
        record, token = self.store.create(key.key_id, now)
        with self._lock:
            self._live[record.session_hash] = (record, now)
        return record, token

    def check(self, token: str, now: datetime) -> tuple[SessionRecord, KeyRecord] | None:
        """The session and key behind a cookie's token, if the session is valid now (it is touched)."""
        session_hash = hash_session_token(token)
        with self._lock:
            live = self._live.get(session_hash)
        if live is None:  # signed in before a restart, or on another worker
            stored = self.store.get(session_hash)
            if stored is None:
                return None
            live = (stored, stored.last_seen_at)
        record, written = live
        why = record.ends_why(now, self.idle, self.absolute)
        key = self.service.keys.get(record.key_id)
        if why is None and (key is None or not key.active):
            why = KEY_REVOKED
        if why is not None:
            self._end(record, now, why)
            return None
        assert key is not None
        record = replace(record, last_seen_at=max(record.last_seen_at, now))
        if now - written >= self.touch_every:
            record, written = self.store.touch(record, now), now
        with self._lock:
            self._live[session_hash] = (record, written)
        return record, key

    def close(self, token: str, now: datetime) -> SessionRecord | None:
        """Sign out: the session behind ``token`` ends now (None if there was none)."""
        session_hash = hash_session_token(token)
        with self._lock:
            live = self._live.get(session_hash)
        record = live[0] if live else self.store.get(session_hash)
        if record is None:
            return None
        return self._end(record, now, SIGNED_OUT)

    def _end(self, record: SessionRecord, now: datetime, why: str) -> SessionRecord:
        with self._lock:
            self._live.pop(record.session_hash, None)
        if record.ended_at is not None:
            return record
        return self.store.end(record, now, why)


def sessions_of(request: Request) -> SessionBook:
    return request.app.state.ui_sessions  # type: ignore[no-any-return]


def safe_next(path: str | None) -> str | None:
    """A local page to return to after sign-in (never another site: no scheme, no '//')."""
    if not path or not path.startswith("/ui/") or path.startswith("//") or "\\" in path:
        return None
    if path.startswith(("/ui/login", "/ui/logout", "/ui/static/")):
        return None
    return path


async def page_user(request: Request, service: ServiceDep, now: Now) -> AuthPrincipal:
    """The signed-in person (redirect to the sign-in form otherwise), noted for the audit trail."""
    token = request.cookies.get(COOKIE)
    found = await run_in_threadpool(sessions_of(request).check, token, now) if token else None
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target, safe="/?=&"))
    record, key = found
    principal = AuthPrincipal.from_record(key)
    request.state.principal = principal
    request.state.session = record
    return principal


PageUser = Annotated[AuthPrincipal, Depends(page_user)]


def page_requires(right: str):  # type: ignore[no-untyped-def]
    """A dependency: the signed-in person, if their role has ``right`` (else the 403 page)."""

    async def check(user: PageUser) -> AuthPrincipal:
        if not user.has(right):
            raise PageForbidden(right)
        return user

    check.__name__ = f"page_requires_{right}"
    return check
