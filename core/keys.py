"""Agent and API keys: created once (the secret is shown only then), stored as SHA-256 hashes.

A key reads `fhk_<key_id>_<secret>`. The key id finds the record; the secret's hash is compared
in constant time. Secrets are 32 random bytes, so a fast hash is enough (a slow KDF is for
passwords people choose, not for random tokens).
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

log = logging.getLogger(__name__)

KEY_PREFIX = "fhk_"
KEY_ROLES = ("worker", "hardware", "auth", "node", "api")


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

    def create(self, role: str, name: str, now: float) -> tuple[KeyRecord, str]:
        if role not in KEY_ROLES:
            raise invalid_params(
                f"unknown role {role!r}: expected one of {', '.join(KEY_ROLES)}", "bad_role"
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
        )
        self._store.insert_key(record)
        self._keys[key_id] = record
        log.info("key %s created for role %s (%s)", key_id, role, name or "unnamed")
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

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
        "created": iso_utc(record.created),
        "revoked": record.revoked,
    }
