"""What the master knows about one connection's peer: who it is and what it may do."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from models.store import KeyRecord

from .registry import RuntimeClient


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(eq=False)
class Session:
    peer_host: str
    peer_port: int
    dialect: str  # "rpc" or "console"
    # Loopback peers without --require-key: allowed everything without a key (SPEC §2).
    trusted: bool
    # The connection came through the TLS port (so a key it sends was not seen in plaintext).
    tls: bool = False
    connection: Any = None
    authorized: bool = False
    role: str | None = None
    key_id: str | None = None
    # The key this session said hello with (None: a trusted peer without one).
    key: KeyRecord | None = None
    client: RuntimeClient | None = None
    topics: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.authorized = self.trusted

    @property
    def principal(self) -> str | None:
        """Whose permissions apply (farmhand/master/api/permissions.py): `admin` for a trusted peer
        or an admin-scoped api key, `read` for a read-only one, else the agent role; None
        before authorisation."""
        if self.trusted:
            return "admin"
        if not self.authorized or self.role is None:
            return None
        if self.role == "api":
            return self.key.scope if self.key is not None and self.key.scope else "admin"
        return self.role

    @property
    def peer(self) -> str:
        return f"{self.peer_host}:{self.peer_port}"
