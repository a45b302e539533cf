"""What the master knows about one connection's peer: who it is and what it may do."""

from __future__ import annotations

from dataclasses import dataclass, field

from farmhand.options import is_loopback as is_loopback  # where the master's code finds it
from models.store import KeyRecord

from .ports import PeerConnection
from .registry import RuntimeClient


@dataclass(eq=False)
class Session:
    peer_host: str
    peer_port: int
    dialect: str  # "rpc" or "console"
    # Loopback peers without --require-key: allowed everything without a key (docs/security.md).
    trusted: bool
    # The connection came through the TLS port (so a key it sends was not seen in plaintext).
    tls: bool = False
    # The JSON-RPC connection (farmhand.master.rpc.RpcConnection); None for a console.
    connection: PeerConnection | None = None
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
