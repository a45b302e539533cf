"""Users and their tokens (RFID cards, iButtons), in memory and written through, plus the
unknown tokens seen recently so that an operator can assign them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from gevent.threadpool import ThreadPool

from models.devicestore import DeviceStore, TokenRecord, UserRecord
from protocol.errors import conflict, invalid_params, not_found
from protocol.times import iso_utc

from .passwords import CURRENT, hash_password, needs_rehash, verify_password

log = logging.getLogger(__name__)

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOKEN = re.compile(r"[0-9a-f]{1,128}")
READER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_UNKNOWN_TOKENS = 100
# Password hashes at once: each takes ~0.5 s of CPU and 128 MiB, so a burst of logins queues
# here (cooperatively) instead of filling the memory.
KDF_THREADS = 2

T = TypeVar("T")


def normalise_token(reader: str, token: str) -> tuple[str, str]:
    token = token.strip().lower()
    if not READER.fullmatch(reader):
        raise invalid_params(f"bad reader name {reader!r}", "bad_reader")
    if not TOKEN.fullmatch(token):
        raise invalid_params(f"bad token {token!r}: expected lower-case hex", "bad_token")
    return reader, token


class People:
    def __init__(self, store: DeviceStore) -> None:
        self.store = store
        self.users: dict[str, UserRecord] = {}
        self.tokens: dict[tuple[str, str], TokenRecord] = {}
        # (reader, token) → {"reader", "token", "agent", "first_seen", "last_seen", "count"}
        self.unknown: dict[tuple[str, str], dict[str, Any]] = {}
        self._next_user_id = 1
        self._next_token_id = 1
        self._kdf_pool: ThreadPool | None = None

    def _kdf(self, function: Callable[..., T], *args: object) -> T:
        """Run a password function in the KDF threads, off the hub."""
        if self._kdf_pool is None:
            self._kdf_pool = ThreadPool(KDF_THREADS)
        result: T = self._kdf_pool.apply(function, args)
        return result

    def load(self, max_ids: dict[str, int]) -> None:
        self.users = {user.username: user for user in self.store.load_users()}
        self.tokens = {(t.reader, t.token): t for t in self.store.load_tokens()}
        self._next_user_id = max_ids.get("user", 0) + 1
        self._next_token_id = max_ids.get("token", 0) + 1

    # -- users ---------------------------------------------------------------------------------
    def create_user(
        self, username: str, display_name: str, password: str | None, admin: bool, now: float
    ) -> UserRecord:
        if not USERNAME.fullmatch(username):
            raise invalid_params(
                f"bad username {username!r}: 1-64 letters, digits, '.', '_' or '-'", "bad_username"
            )
        if username in self.users:
            raise conflict(f"user {username!r} already exists", "user_exists")
        password_hash = None
        if password is not None:
            if len(password) < 8:
                raise invalid_params("passwords need at least 8 characters", "weak_password")
            password_hash = self._kdf(hash_password, password)
        user = UserRecord(
            id=self._next_user_id,
            username=username,
            display_name=display_name or username,
            password_hash=password_hash,
            admin=admin,
            enabled=True,
            created=now,
        )
        self.store.save_user(user)
        self._next_user_id += 1
        self.users[username] = user
        log.info("user %s created%s", username, " (admin)" if admin else "")
        return user

    def user(self, username: str) -> UserRecord:
        user = self.users.get(username)
        if user is None:
            raise not_found(f"no user {username!r}", "no_such_user")
        return user

    def authenticate(self, username: str, password: str) -> UserRecord | None:
        """The user if the password is right. An unknown user, a disabled one or one without a
        password costs the same KDF work, so timing does not tell them apart."""
        user = self.users.get(username)
        stored = user.password_hash if user is not None and user.enabled else None
        if not self._kdf(verify_password, password, stored) or user is None:
            return None
        if stored is not None and needs_rehash(stored):
            self._upgrade_hash(user, password)
        return user

    def _upgrade_hash(self, user: UserRecord, password: str) -> None:
        """Replace a hash made with weaker parameters (or the first format): the password is
        at hand only now, at a successful login."""
        new_hash = self._kdf(hash_password, password)
        try:
            self.store.update_password_hash(user.id, new_hash)
        except Exception:
            log.exception("user %s: storing the upgraded password hash failed", user.username)
            return
        user.password_hash = new_hash
        log.info(
            "password hash of user %s upgraded to scrypt ln=%d,r=%d,p=%d",
            user.username,
            CURRENT.log_n,
            CURRENT.r,
            CURRENT.p,
        )

    # -- tokens --------------------------------------------------------------------------------
    def assign(self, reader: str, token: str, username: str, now: float) -> TokenRecord:
        reader, token = normalise_token(reader, token)
        self.user(username)
        record = self.tokens.get((reader, token))
        if record is None:
            record = TokenRecord(
                id=self._next_token_id,
                reader=reader,
                token=token,
                username=username,
                created=now,
                enabled=True,
            )
            self._next_token_id += 1
        else:
            record.username = username
        self.store.save_token(record)
        self.tokens[(reader, token)] = record
        self.unknown.pop((reader, token), None)
        log.info("token %s at %s assigned to %s", token, reader, username)
        return record

    def revoke(self, reader: str, token: str) -> None:
        reader, token = normalise_token(reader, token)
        record = self.tokens.get((reader, token))
        if record is None:
            raise not_found(f"token {token} at {reader} is not assigned", "no_such_token")
        self.store.delete_token(record.id)
        del self.tokens[(reader, token)]
        log.info("token %s at %s revoked (was %s)", token, reader, record.username)

    def owner(self, reader: str, token: str) -> UserRecord | None:
        """The enabled user this token belongs to, or None."""
        record = self.tokens.get((reader, token))
        if record is None or not record.enabled:
            return None
        user = self.users.get(record.username)
        return user if user is not None and user.enabled else None

    def note_unknown(self, reader: str, token: str, agent: str, now: float) -> dict[str, Any]:
        seen = self.unknown.get((reader, token))
        if seen is None:
            seen = {
                "reader": reader,
                "token": token,
                "agent": agent,
                "first_seen": now,
                "last_seen": now,
                "count": 0,
            }
            self.unknown[(reader, token)] = seen
            while len(self.unknown) > MAX_UNKNOWN_TOKENS:
                oldest = min(self.unknown, key=lambda key: self.unknown[key]["last_seen"])
                del self.unknown[oldest]
        seen.update(agent=agent, last_seen=now, count=seen["count"] + 1)
        return seen


def user_view(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "admin": user.admin,
        "enabled": user.enabled,
        "created": iso_utc(user.created),
        "has_password": user.password_hash is not None,
    }


def token_view(token: TokenRecord) -> dict[str, Any]:
    return {
        "id": token.id,
        "reader": token.reader,
        "token": token.token,
        "username": token.username,
        "created": iso_utc(token.created),
        "enabled": token.enabled,
    }


def unknown_view(seen: dict[str, Any]) -> dict[str, Any]:
    return {
        **seen,
        "first_seen": iso_utc(seen["first_seen"]),
        "last_seen": iso_utc(seen["last_seen"]),
    }
