"""What the master exposes to the network: the warnings it prints at start and lists in
`status`, and the refusal of a key that another machine sent over plain TCP while the master
offers TLS (such a key has been seen on the wire and must be replaced).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocol.errors import RpcError, unauthorized

from .config import MasterConfig
from .session import Session, is_loopback

if TYPE_CHECKING:
    from .services import Services

log = logging.getLogger(__name__)

# One warning per peer host in this time, however often it retries with its exposed key.
EXPOSED_KEY_LOG_EVERY_S = 60.0
MAX_REMEMBERED_PEERS = 1000


def binds_loopback_only(host: str) -> bool:
    return host.lower() == "localhost" or is_loopback(host)


def exposure_warnings(config: MasterConfig) -> list[str]:
    """Plain sentences, one per way this configuration exposes the farm (none on loopback)."""
    if binds_loopback_only(config.host):
        return []
    warnings: list[str] = []
    if not config.tls_enabled:
        warnings.append(
            f"listening on {config.host} without TLS: keys, job commands and their "
            "environments cross the network in plaintext; add --tls-port, --tls-cert and "
            "--tls-key (docs/security.md, TLS)"
        )
    if not config.require_key:
        warnings.append(
            "without --require-key every process on this machine is an admin: any local user, "
            "or anything that reaches 127.0.0.1 here (an SSH tunnel, a container on the host's "
            "network), can run commands on every worker; add --require-key on a shared host"
        )
    return warnings


@dataclass
class ExposedKeyLog:
    """When each peer host was last warned about, so a retrying agent logs once a minute."""

    last_warned: dict[str, float] = field(default_factory=dict)

    def should_warn(self, host: str, now: float) -> bool:
        last = self.last_warned.get(host)
        if last is not None and now - last < EXPOSED_KEY_LOG_EVERY_S:
            return False
        if len(self.last_warned) >= MAX_REMEMBERED_PEERS:
            self.last_warned.clear()
        self.last_warned[host] = now
        return True


def refuse_key_in_clear(services: Services, session: Session, key: str) -> None:
    """Raise -32001 (reason `tls_required`) when `key` came over plain TCP from another
    machine and this master has a TLS port: keys never cross a network in plaintext."""
    if session.tls or not services.config.tls_enabled or is_loopback(session.peer_host):
        return
    record = services.keys.verify(key)
    if services.exposed_keys.should_warn(session.peer_host, services.clock.mono()):
        which = f"key {record.key_id} ({record.role})" if record is not None else "a key"
        log.warning(
            "%s sent %s in plaintext on the plain port: refused; treat it as exposed "
            "(keys.revoke it and give the agent a new key with a tls:// address)",
            session.peer,
            which,
        )
    raise tls_required(services)


def tls_required(services: Services) -> RpcError:
    port = services.tls_address[1] if services.tls_address else services.config.tls_port
    return unauthorized(
        f"keys are accepted from other machines only over TLS: connect to tls://HOST:{port}; "
        "this key crossed the network in plaintext, so replace it",
        "tls_required",
    )
