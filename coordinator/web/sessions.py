"""Web sign-in sessions, CSRF tokens and the Origin check.

A principal signs in once with its token; the token is checked (``coordinator.principals.authenticate``) and
forgotten. The browser gets an opaque random session id in an ``HttpOnly; Secure; SameSite=Strict`` cookie; the
database keeps only its SHA-256 (``web_sessions``, revision 0003), the principal and when it was last used. Each
lookup re-reads the principal, so revoking it ends its sessions at once; a session unused for
``web_idle_minutes`` ends too. The JSON API never reads this cookie: it takes bearer tokens only.

Every form carries a CSRF token derived from the session id (HMAC-SHA256 under it: nothing more to store, and
nobody without the cookie can compute it), and every POST must come from this site's own origin (``Origin``, or
``Referer`` where a browser sends no Origin). The sign-in form, which has no session yet, is bound the same way
to a one-time cookie of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from coordinator.clock import now
from coordinator.models import Principal, WebSession
from coordinator.principals import Identity

__all__ = ["COOKIE", "SIGN_IN_COOKIE", "Signed", "clear_cookie", "csrf_token", "end_session", "look_up",
           "new_nonce", "same_origin", "set_cookie", "start_session", "valid_csrf"]

COOKIE = "tillit_session"
#: binds the sign-in form to the browser that asked for it (login CSRF)
SIGN_IN_COOKIE = "tillit_sign_in"


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: who, and the session id its forms' CSRF tokens derive from."""

    identity: Identity
    session_id: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.session_id)


def _hash(session_id: str) -> str:
    return hashlib.sha256(b"tillit.web.session\0" + session_id.encode()).hexdigest()


def start_session(session: Session, principal: Principal) -> str:
    """Record a new session for ``principal``; returns its id (for the cookie only, never stored)."""
    session_id = secrets.token_urlsafe(32)
    stamp = now()
    session.add(WebSession(id_hash=_hash(session_id), principal_id=principal.id, created_at=stamp,
                           last_seen_at=stamp))
    return session_id


def look_up(session: Session, session_id: str | None, idle_minutes: float) -> Signed | None:
    """The signed-in principal behind a session cookie, or None (no cookie, unknown, idle too long, revoked).
    A live session's last use moves to now."""
    if not session_id or len(session_id) > 200:
        return None
    found = session.execute(select(WebSession, Principal).join(Principal, WebSession.principal_id == Principal.id)
                            .where(WebSession.id_hash == _hash(session_id))).first()
    if found is None:
        return None
    row, principal = found
    idle = dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(row.last_seen_at)
    if principal.revoked_at is not None or idle > dt.timedelta(minutes=idle_minutes):
        session.execute(delete(WebSession).where(WebSession.id_hash == row.id_hash))
        return None
    row.last_seen_at = now()
    identity = Identity(name=principal.name, role=principal.role,  # type: ignore[arg-type]
                        datasets=frozenset(json.loads(principal.datasets)))
    return Signed(identity, session_id)


def end_session(session: Session, session_id: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id_hash == _hash(session_id)))


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"tillit.web.csrf", hashlib.sha256).hexdigest()


def valid_csrf(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected, given or "")


def new_nonce() -> str:
    """A one-time value for the sign-in form and its cookie."""
    return secrets.token_urlsafe(24)


def same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this site: its Origin (or, failing that, its Referer) is ours."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" == own
    return False


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")
