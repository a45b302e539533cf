"""Password hashes (issue 9, finding 6): scrypt at OWASP's N=2^17, r=8, p=1 in a self-describing
format, the first format still read, weaker hashes flagged for an upgrade, and the same KDF work
whether or not the user exists."""

from __future__ import annotations

import base64
import hashlib
import statistics
import time

import pytest

from farmhand.master.devices.passwords import hash_password, needs_rehash, verify_password

PASSWORD = "correct horse battery"


def old_format(password: str, n: int = 2**14) -> str:
    """What farmhand stored before: scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32, maxmem=1 << 28)
    b64 = base64.b64encode
    return f"scrypt${n}$8$1${b64(salt).decode()}${b64(digest).decode()}"


def test_a_new_hash_says_its_parameters_and_verifies() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$scrypt$ln=17,r=8,p=1$")
    salt, digest = stored.split("$")[3:]
    assert len(base64.b64decode(salt + "==")) == 16 and len(base64.b64decode(digest + "==")) == 32
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "!", stored)
    assert not needs_rehash(stored)
    assert hash_password(PASSWORD) != stored  # salted


def test_the_old_format_is_still_read_and_flagged_for_an_upgrade() -> None:
    stored = old_format(PASSWORD)
    assert verify_password(PASSWORD, stored)
    assert not verify_password("wrong", stored)
    assert needs_rehash(stored)
    # The old format at today's strength still counts as old: the format is upgraded too.
    assert needs_rehash(old_format(PASSWORD, n=2**17))


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "plain",
        "scrypt$x$8$1$AA==$AA==",
        "$scrypt$ln=17,r=8$AAAA$AAAA",
        "$scrypt$ln=17,r=8,p=1$!!!$AAAA",
        "$argon2id$v=19$m=65536,t=3,p=4$AAAA$AAAA",
        # Absurd costs are refused, not attempted (2^40 rounds of 1 KiB would never finish).
        "$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$1099511627776$8$1$AA==$AA==",
    ],
)
def test_a_bad_stored_hash_never_verifies_and_never_raises(stored: str | None) -> None:
    assert verify_password(PASSWORD, stored) is False
    assert needs_rehash(stored or "")


def median_s(runs: int, call: object) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def test_an_unknown_user_costs_the_same_kdf_work_as_a_wrong_password() -> None:
    """Enumeration by timing: 2.4 ms for an unknown user vs 52.6 ms for a wrong password."""
    stored = hash_password(PASSWORD)
    wrong = median_s(3, lambda: verify_password("wrong password", stored))
    unknown = median_s(3, lambda: verify_password("wrong password", None))
    # Generous bounds: a shared machine skews single timings; the bug was 22 times.
    assert 0.5 < unknown / wrong < 2.0, (unknown, wrong)
    assert wrong > 0.1, wrong  # and it is the slow KDF (~0.5 s at N=2^17)
