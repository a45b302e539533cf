"""Server-side login sessions: an opaque random id in a cookie, the state in memory.

Nothing about the user travels in the cookie (no pickled, signed cookie). A session expires
after `idle_s` without use and at the latest `max_age_s` after it was created; a login swaps the
id (no session fixation). Each session carries its own CSRF token.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

COOKIE_NAME = "fh_session"
IDLE_S = 8 * 3600.0
MAX_AGE_S = 7 * 24 * 3600.0
SWEEP_EVERY_S = 60.0
MAX_SESSIONS = 10_000  # an attacker creating anonymous sessions cannot grow memory forever


@dataclass(slots=True)
class Session:
    """One browser's session: anonymous until a login sets `username`."""

    id: str
    csrf: str
    created: float
    last_used: float
    username: str | None = None
    admin: bool = False
    flash: list[str] = field(default_factory=list)

    @property
    def logged_in(self) -> bool:
        return self.username is not None


class SessionStore:
    """Sessions by id, with expiry checked on each lookup and swept on each creation."""

    def __init__(self, idle_s: float = IDLE_S, max_age_s: float = MAX_AGE_S):
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self._sessions: dict[str, Session] = {}
        self._last_sweep = 0.0

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, now: float | None = None) -> Session:
        now = time.monotonic() if now is None else now
        self.sweep(now)
        if len(self._sessions) >= MAX_SESSIONS:
            # Drop the least recently used anonymous sessions first, then any.
            victims = sorted(self._sessions.values(), key=lambda s: (s.logged_in, s.last_used))
            for victim in victims[: len(self._sessions) - MAX_SESSIONS + 1]:
                del self._sessions[victim.id]
        session = Session(
            id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), created=now, last_used=now
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, now: float | None = None) -> Session | None:
        """The live session with this id (its use time refreshed), or None."""
        if not session_id:
            return None
        now = time.monotonic() if now is None else now
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if self._expired(session, now):
            del self._sessions[session_id]
            return None
        session.last_used = now
        return session

    def login(
        self, old: Session | None, username: str, admin: bool, now: float | None = None
    ) -> Session:
        """A fresh session (new id, new CSRF token) for a user who just proved their password."""
        if old is not None:
            self.drop(old.id)
        session = self.create(now)
        session.username = username
        session.admin = admin
        return session

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def sweep(self, now: float) -> None:
        if now - self._last_sweep < SWEEP_EVERY_S:
            return
        self._last_sweep = now
        for session_id in [sid for sid, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[session_id]

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_used > self.idle_s or now - session.created > self.max_age_s
