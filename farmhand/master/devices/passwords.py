"""Password hashing with scrypt (a slow, memory-hard KDF from the standard library) at OWASP's
parameters: N=2^17, r=8, p=1, so ~0.5 s of CPU and 128 MiB per hash.

Hashes are PHC strings, `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (base64 without padding), so each
carries its parameters. The first format, `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`, is still
read; `needs_rehash` says when a stored hash should be replaced at the next login. Callers run
these functions in a worker thread (hashlib releases the GIL) and bound how many run at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class ScryptCost:
    log_n: int
    r: int
    p: int

    @property
    def maxmem(self) -> int:
        # scrypt needs 128·r·N bytes (plus 128·r·p); hashlib refuses more than maxmem, whose
        # default of 32 MiB is below what N=2^17, r=8 takes.
        return 128 * self.r * ((1 << self.log_n) + self.p) + (1 << 20)

    @property
    def affordable(self) -> bool:
        """A stored hash may ask for at most this much work (a bad row cannot stall the master)."""
        return 1 <= self.log_n <= 20 and 1 <= self.r <= 16 and 1 <= self.p <= 4


CURRENT = ScryptCost(log_n=17, r=8, p=1)
SALT_BYTES = 16
HASH_BYTES = 32
PHC_PREFIX = "$scrypt$"
# Unknown users and unreadable hashes get the same work as a real check, against this salt.
_DUMMY_SALT = b"farmhand-no-user"


@dataclass(frozen=True)
class ParsedHash:
    cost: ScryptCost
    salt: bytes
    digest: bytes
    current_format: bool


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(password, salt, CURRENT, HASH_BYTES)
    params = f"ln={CURRENT.log_n},r={CURRENT.r},p={CURRENT.p}"
    return f"{PHC_PREFIX}{params}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True if `password` matches `stored`. Without a usable hash (no user, no password, a bad
    row) the same KDF runs anyway, so the answer's timing does not tell which it was."""
    parsed = parse_hash(stored) if stored else None
    if parsed is None:
        _derive(password, _DUMMY_SALT, CURRENT, HASH_BYTES)
        return False
    actual = _derive(password, parsed.salt, parsed.cost, len(parsed.digest))
    return hmac.compare_digest(actual, parsed.digest)


def needs_rehash(stored: str) -> bool:
    """True unless `stored` is in today's format at today's cost."""
    parsed = parse_hash(stored)
    return parsed is None or not parsed.current_format or parsed.cost != CURRENT


def parse_hash(stored: str) -> ParsedHash | None:
    """Either format, or None when the text is not a hash we can (or should) check."""
    try:
        if stored.startswith(PHC_PREFIX):
            parsed = _parse_phc(stored)
        elif stored.startswith("scrypt$"):
            parsed = _parse_first_format(stored)
        else:
            return None
    except (ValueError, binascii.Error):
        return None
    if not parsed.cost.affordable or not parsed.salt or len(parsed.digest) < 16:
        return None
    return parsed


def _parse_phc(stored: str) -> ParsedHash:
    _, _, params, salt, digest = stored.split("$")
    values = dict(item.split("=", 1) for item in params.split(","))
    if set(values) != {"ln", "r", "p"}:
        raise ValueError(f"scrypt params {params!r}")
    cost = ScryptCost(int(values["ln"]), int(values["r"]), int(values["p"]))
    return ParsedHash(cost, _unb64(salt), _unb64(digest), current_format=True)


def _parse_first_format(stored: str) -> ParsedHash:
    _, n_text, r, p, salt, digest = stored.split("$")
    n = int(n_text)
    if n < 2 or n & (n - 1):
        raise ValueError(f"scrypt n={n} is not a power of two")
    cost = ScryptCost(n.bit_length() - 1, int(r), int(p))
    salt_bytes = base64.b64decode(salt, validate=True)
    digest_bytes = base64.b64decode(digest, validate=True)
    return ParsedHash(cost, salt_bytes, digest_bytes, current_format=False)


def _derive(password: str, salt: bytes, cost: ScryptCost, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=1 << cost.log_n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.maxmem,
        dklen=length,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
