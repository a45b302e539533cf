"""A throwaway Mosquitto broker for tests: a generated config on a free 127.0.0.1 port (never
the default 1883), started as a child process; `restart()` keeps the port. And `Watcher`, a
paho subscriber that keeps the last payload of every topic it saw."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.support import wait_for

START_TIMEOUT_S = 10.0


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """`tls` (a (cert, key) pair): also a TLS listener on `tls_port`, the plain one kept for
    test subscribers."""

    def __init__(self, directory: Path, tls: tuple[Path, Path] | None = None) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is not installed: run `make sysdeps`")
        self.binary = binary
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        # No persistence: a restart loses every retained message, as a broker whose disk was
        # wiped would; the bridge must publish everything again.
        config = (
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\n"
        )
        self.tls_port = free_port() if tls else None
        if tls:
            # Started as root, mosquitto drops to the `mosquitto` user, which cannot read the
            # test's private temporary directory: stay the user that runs the tests.
            if os.geteuid() == 0:
                config = "user root\n" + config
            config += f"listener {self.tls_port} 127.0.0.1\ncertfile {tls[0]}\nkeyfile {tls[1]}\n"
        self.config.write_text(config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        log = (self.directory / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        wait_for(self._accepts, START_TIMEOUT_S, what=f"mosquitto on port {self.port}")
        return self

    def _accepts(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"mosquitto exited: {(self.directory / 'mosquitto.log').read_text()}"
            )
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.5).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Watcher:
    """Subscribes to `topics` (default everything) and keeps the newest payload per topic,
    plus every message in order, in its own paho thread."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("#",)) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.last: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(topic, 0) for topic in topics])
        self.client.loop_start()
        if not self._subscribed.wait(5):
            raise AssertionError("the watcher could not subscribe")

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))
            self.last[message.topic] = message.payload

    def json(self, topic: str) -> Any:
        with self._lock:
            payload = self.last.get(topic)
        return None if not payload else orjson.loads(payload)

    def wait_json(self, topic: str, check: Any = bool, timeout: float = 10.0) -> Any:
        """The topic's newest JSON payload once check(payload) holds."""

        def ready() -> Any:
            value = self.json(topic)
            return value if value is not None and check(value) else None

        return wait_for(
            ready, timeout, what=f"{topic} to satisfy the check; saw {self.json(topic)!r}"
        )

    def topics(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(t for t, p in self.last.items() if t.startswith(prefix) and p)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
