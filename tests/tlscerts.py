"""Test certificates made the way an operator makes them: contrib/make-farm-ca.sh (the openssl
command) in a temporary directory, and clients that trust them."""

from __future__ import annotations

import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import ROOT

SCRIPT = ROOT / "contrib" / "make-farm-ca.sh"


@dataclass(frozen=True)
class FarmCa:
    directory: Path
    name: str = "master"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.directory / f"{self.name}.pem"

    @property
    def key(self) -> Path:
        return self.directory / f"{self.name}.key"

    def master_flags(self) -> list[str]:
        return ["--tls-port", "0", "--tls-cert", str(self.cert), "--tls-key", str(self.key)]


def make_farm_ca(directory: Path, *hosts: str, name: str = "master") -> FarmCa:
    subprocess.run(
        ["bash", str(SCRIPT), "--dir", str(directory), "--name", name, *hosts],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return FarmCa(directory, name)


def tls_connect(
    port: int, ca: Path, host: str = "localhost", timeout: float = 10.0
) -> ssl.SSLSocket:
    """A blocking stdlib TLS connection that verifies the master's certificate and name."""
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
