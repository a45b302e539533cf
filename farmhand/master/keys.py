"""Agent and API keys: created once (the secret is shown only then), stored as SHA-256 hashes.

A key reads `fhk_<key_id>_<secret>`. The key id finds the record; the secret's hash is compared
in constant time. Secrets are 32 random bytes, so a fast hash is enough (a slow KDF is for
passwords people choose, not for random tokens). An agent key belongs to one role and one client
name, given at creation or bound at its first hello; an api key has a scope, read or admin.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

from models.store import KeyRecord, Store
from protocol.errors import invalid_params, not_found
from protocol.times import iso_utc

from .registry import AGENT_ROLES, CLIENT_NAME

log = logging.getLogger(__name__)

KEY_PREFIX = "fhk_"
KEY_ROLES = ("worker", "hardware", "auth", "node", "api")
API_SCOPES = ("read", "admin")
# Keys made before scopes existed could do everything; a new api key without one still can.
DEFAULT_API_SCOPE = "admin"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        return None
    return key_id, secret


class KeyRing:
    """All keys in memory (loaded at start); changes are written through before they answer."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._keys: dict[str, KeyRecord] = {}

    def load(self) -> None:
        self._keys = {record.key_id: record for record in self._store.load_keys()}

    def create(
        self, role: str, name: str, now: float, label: str = "", scope: str | None = None
    ) -> tuple[KeyRecord, str]:
        if role not in KEY_ROLES:
            raise invalid_params(
                f"unknown role {role!r}: expected one of {', '.join(KEY_ROLES)}", "bad_role"
            )
        if role in AGENT_ROLES:
            if name and not CLIENT_NAME.fullmatch(name):
                raise invalid_params(
                    f"an agent key's name is the client name it is bound to, and {name!r} is "
                    "not one (letters, digits and ._@:+-); put free text in `label`",
                    "bad_name",
                )
            if scope is not None:
                raise invalid_params("only api keys have a scope", "bad_scope")
        else:
            scope = scope or DEFAULT_API_SCOPE
            if scope not in API_SCOPES:
                raise invalid_params(
                    f"unknown scope {scope!r}: expected one of {', '.join(API_SCOPES)}",
                    "bad_scope",
                )
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = KeyRecord(
            key_id=key_id,
            role=role,
            name=name,
            secret_hash=hash_secret(secret),
            created=now,
            revoked=False,
            label=label,
            scope=scope,
        )
        self._store.insert_key(record)
        self._keys[key_id] = record
        log.info(
            "key %s created for role %s%s (%s)",
            key_id,
            role,
            f" scope {scope}" if scope else "",
            name or "unbound" if role in AGENT_ROLES else name or "unnamed",
        )
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def bind(self, record: KeyRecord, name: str) -> bool:
        """Bind an unbound agent key to `name` for good; False if it belongs to another name.

        The name is claimed in memory before the write yields, so two first hellos racing
        with one key cannot both win; a failed write gives the claim back.
        """
        if record.name:
            return record.name == name
        record.name = name
        try:
            self._store.bind_key(record.key_id, name)
        except BaseException:
            record.name = ""
            raise
        log.info("key %s bound to client %s at its first hello", record.key_id, name)
        return True

    def revoke(self, key_id: str) -> KeyRecord:
        record = self._keys.get(key_id)
        if record is None:
            raise not_found(f"no key with id {key_id!r}", "no_such_key")
        if not record.revoked:
            self._store.revoke_key(key_id)
            record.revoked = True
            log.info("key %s revoked", key_id)
        return record

    def verify(self, key: str) -> KeyRecord | None:
        """The live key record for `key`, or None. Constant-time on the secret."""
        parts = split_key(key)
        if parts is None:
            return None
        record = self._keys.get(parts[0])
        if record is None or record.revoked:
            return None
        if not hmac.compare_digest(record.secret_hash, hash_secret(parts[1])):
            return None
        return record

    def records(self) -> list[KeyRecord]:
        return sorted(self._keys.values(), key=lambda record: record.created)


def key_view(record: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "role": record.role,
        "name": record.name,
        "label": record.label,
        "scope": record.scope,
        "created": iso_utc(record.created),
        "revoked": record.revoked,
    }
