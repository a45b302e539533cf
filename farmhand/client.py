"""farmhand's Python client, for scripts, pipelines and DCC applications (docs/protocol.md).

It imports only the standard library (it runs inside Blender's Python, where gevent and orjson
are not installed) and speaks through the same sans-IO JSON-RPC peer as the master
(protocol/peer.py), over blocking sockets. One `Client` per thread.

    from farmhand.client import Client, RpcError

    with Client("render-master:6000") as farm:
        job_id = farm.submit("shot-010", ["blender", "-b", "shot.blend", "-f", "{frame}"],
                             frames="1-250", chunk=10)
        print(farm.wait(job_id)["status"])

The master is reached again (with backoff, trying each address of a list in turn) whenever a
call finds the connection gone; a call whose connection breaks after it was sent raises
`MasterUnavailable` and is never sent twice. `wait` and `subscribe` ride out reconnects.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farmhand.blocking import Connection, Unavailable
from farmhand.options import (
    DEFAULT_MASTER,
    MasterAddress,
    describe_tls_error,
    key_in_clear,
    parse_addresses,
)
from protocol.backoff import Backoff
from protocol.errors import ErrorCode, RpcError
from protocol.version import PROTOCOL_VERSION

__all__ = ["Client", "ErrorCode", "Event", "MasterUnavailable", "RpcError"]

# No master answers, or the connection ended before the answer came (a ConnectionError).
MasterUnavailable = Unavailable

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
# How long a call keeps trying to reach a master before it gives up.
RECONNECT_S = 10.0
WAIT_POLL_S = 2.0
FINISHED = ("completed", "failed", "canceled")


@dataclass(frozen=True, slots=True)
class Event:
    """One `event` notification of a subscribed topic: `topic` and its `data`."""

    topic: str
    data: Any


def tls_context(ca: str | Path | None) -> ssl.SSLContext:
    """Verifies the master's certificate (against `ca`, else the system's CAs) and host name."""
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Client:
    """A connection to a farmhand master, made on the first call.

    `address` is `HOST:PORT`, `tls://HOST:PORT`, or a comma-separated list of them (standby
    masters, tried in turn); `key` is an api key (not needed on the master's own machine);
    `ca` the CA bundle that verifies a TLS master's certificate (default: the system's CAs).

        farm = Client("tls://farm.example:6443", key="fhk_…", ca="farm-ca.pem")
        print(farm.call("ping"))  # "pong"
        farm.close()
    """

    def __init__(
        self,
        address: str | Sequence[str] = DEFAULT_MASTER,
        key: str | None = None,
        ca: str | Path | None = None,
        *,
        name: str = "farmhand-client",
        timeout: float = CALL_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        reconnect_s: float = RECONNECT_S,
    ) -> None:
        text = address if isinstance(address, str) else ",".join(address)
        self.addresses: list[MasterAddress] = parse_addresses(text)
        self.key = key
        self.name = name
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reconnect_s = reconnect_s
        self._ca = ca
        self._tls: ssl.SSLContext | None = None
        self._connection: Connection | None = None
        # Topics to subscribe on every connection, and those the current one has.
        self._topics: set[str] = set()
        self._subscribed: set[str] = set()
        self._warned_key_in_clear = False
        # The master this client last reached (None before the first call).
        self.master: MasterAddress | None = None

    # -- the connection ----------------------------------------------------------------------
    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        self._subscribed = set()
        if connection is not None:
            connection.close()

    def connect(self) -> None:
        """Reach a master now (calls do it when needed): MasterUnavailable when none answers
        within `reconnect_s`, RpcError when the master refuses the key."""
        connection = self._connection
        if connection is not None and connection.alive():
            return
        self.close()
        backoff = Backoff(initial_s=0.2, maximum_s=2.0)
        deadline = time.monotonic() + self.reconnect_s
        while True:
            errors = []
            hopeless = True  # every master's certificate was refused: retrying cannot help
            for address in self.addresses:
                try:
                    self._connection = self._open(address)
                    self._subscribed = set(self._topics)
                    self.master = address
                    return
                except OSError as exc:
                    errors.append(f"{address}: {_describe(exc)}")
                    hopeless = hopeless and isinstance(exc, ssl.SSLCertVerificationError)
            delay = backoff.next_delay()
            if hopeless or time.monotonic() + delay > deadline:
                raise MasterUnavailable("no master answers: " + "; ".join(errors))
            time.sleep(delay)

    def _open(self, address: MasterAddress) -> Connection:
        sock = socket.create_connection((address.host, address.port), self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if address.tls:
                if self._tls is None:
                    self._tls = tls_context(self._ca)
                sock = self._tls.wrap_socket(sock, server_hostname=address.host)
            if self.key and not self._warned_key_in_clear and key_in_clear(address, sock):
                self._warned_key_in_clear = True
                log.warning("sending the key to %s in plaintext: use tls://HOST:TLS_PORT", address)
        except BaseException:
            sock.close()
            raise
        connection = Connection(sock, name=f"master {address}")
        try:
            hello: dict[str, Any] = {"role": "api", "name": self.name, "proto": PROTOCOL_VERSION}
            if self.key:
                hello["key"] = self.key
            connection.call("hello", hello, timeout=self.timeout)
            if self._topics:
                connection.call("subscribe", {"topics": sorted(self._topics)}, timeout=self.timeout)
        except BaseException:
            connection.close()
            raise
        return connection

    # -- calls ---------------------------------------------------------------------------------
    def call(self, method: str, **params: Any) -> Any:
        """Call any method of the master (docs/api.md): its result, or RpcError.

        farm.call("clients.enable", select="render-*")  # {"matched": […], "changed": […]}
        """
        return self.request(method, params)

    def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_behalf_of: str | None = None,
    ) -> Any:
        """`call` with the params as a dict and a timeout of its own (TimeoutError).

        farm.request("jobs.list", {"status": "active"}, timeout=5)
        """
        self.connect()
        connection = self._connection
        assert connection is not None
        try:
            return connection.call(
                method,
                params,
                timeout=self.timeout if timeout is None else timeout,
                on_behalf_of=on_behalf_of,
            )
        except (MasterUnavailable, TimeoutError):
            self.close()  # the next call starts afresh; this one is not sent again
            raise

    # -- typed helpers for the common methods ----------------------------------------------
    def submit(
        self,
        name: str,
        argv: Sequence[str] | None = None,
        *,
        frames: str | None = None,
        chunk: int | None = None,
        priority: int | None = None,
        tags: Sequence[str] | None = None,
        template: str | None = None,
        **params: Any,
    ) -> int:
        """Submit a job; its id once the master has stored it. With `template` (see
        `templates()`), its params pass as keywords and the template makes the argv. Other
        `jobs.submit` params (`depends_on`, `outputs`, `max_attempts`, `env`, `cwd`, …) pass
        through.

            job_id = farm.submit("preview", ["render", "{frame}"], frames="1-10", tags=["gpu"])
            shot = farm.submit("shot", template="blender", file="/farm/shot.blend",
                               frames="1-250", chunk=5)
            movie = farm.submit("movie", template="ffmpeg", input="/farm/render/####.png",
                                output="/farm/shot.mp4", depends_on=[shot])
        """
        fields: dict[str, Any] = {"name": name, **params}
        if argv is not None:
            fields["argv"] = list(argv)
        pairs = (
            ("frames", frames),
            ("chunk", chunk),
            ("priority", priority),
            ("template", template),
        )
        for key, value in pairs:
            if value is not None:
                fields[key] = value
        if tags is not None:
            fields["tags"] = list(tags)
        return int(self.request("jobs.submit", fields)["job_id"])

    def templates(self) -> list[dict[str, Any]]:
        """The job templates the master offers: `name`, `summary`, `params` (each with `name`,
        `type`, `required`, `default`, `summary`).

            for template in farm.templates():
                print(template["name"], [p["name"] for p in template["params"]])
        """
        return list(self.request("jobs.templates", {})["templates"])

    def job(self, job_id: int) -> dict[str, Any]:
        """A job's view: `status`, `progress` (0-100), `tasks_by_status`, ….

        print(farm.job(7)["progress"])
        """
        view: dict[str, Any] = self.request("jobs.get", {"job_id": job_id})
        return view

    def jobs(
        self, status: str | None = None, *, limit: int | None = None, offset: int | None = None
    ) -> list[dict[str, Any]]:
        """The newest jobs (optionally of one status), as job views.

        for job in farm.jobs("failed"):
            print(job["id"], job["name"])
        """
        pairs = (("status", status), ("limit", limit), ("offset", offset))
        params = {key: value for key, value in pairs if value is not None}
        return list(self.request("jobs.list", params)["jobs"])

    def tasks(self, job_id: int) -> list[dict[str, Any]]:
        """A job's tasks: `id`, `frames`, `status`, `worker`, `attempts`, `exit_code`, ….

        failed = [t["id"] for t in farm.tasks(7) if t["status"] == "failed"]
        """
        return list(self.request("tasks.list", {"job_id": job_id})["tasks"])

    def log(self, task_id: int, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
        """A slice of a task's log: `text`, `next_offset` (to ask for the rest), `complete`.

        part = farm.log(12)
        print(part["text"], end="")
        """
        params: dict[str, Any] = {"task_id": task_id, "offset": offset}
        if limit is not None:
            params["limit"] = limit
        part: dict[str, Any] = self.request("tasks.log", params)
        return part

    def follow_log(self, task_id: int, offset: int = 0, *, poll_s: float = 1.0) -> Iterator[str]:
        """A task's log as it is written, piece by piece, until the task has ended and all of
        it is read (like `tail -f`). It rides out reconnects.

            for text in farm.follow_log(12):
                print(text, end="")
        """
        topic = f"log:{task_id}"
        added = topic not in self._topics
        self._topics.add(topic)
        try:
            while True:
                try:
                    self._subscribe_on_connection([topic])
                    part = self.log(task_id, offset)
                except MasterUnavailable:
                    continue  # the next call reconnects, with backoff
                if part["text"]:
                    yield part["text"]
                offset = part["next_offset"]
                if part["complete"]:
                    return
                if not part["text"]:
                    try:
                        self._next_event(poll_s, lambda event: event.topic == topic)
                    except MasterUnavailable:
                        continue
        finally:
            if added:
                self._topics.discard(topic)
                self._forget_topics([topic])

    def clients(self, select: str | None = None) -> list[dict[str, Any]]:
        """Workers and other clients (a selector such as `online role=worker` narrows it).

        idle = [c["name"] for c in farm.clients("idle role=worker")]
        """
        params = {} if select is None else {"select": select}
        return list(self.request("clients.list", params)["clients"])

    def wait(
        self,
        job_id: int,
        timeout: float | None = None,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = WAIT_POLL_S,
    ) -> dict[str, Any]:
        """Until the job is completed, failed or canceled: its last view. `on_progress(view)`
        runs whenever the view changes; TimeoutError after `timeout` seconds.

            view = farm.wait(job_id, on_progress=lambda v: print(v["progress"], "%"))
            ok = view["status"] == "completed"
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        added = "jobs" not in self._topics
        self._topics.add("jobs")
        last: dict[str, Any] | None = None
        try:
            while True:
                try:
                    self._subscribe_on_connection(["jobs"])
                    view = self.job(job_id)
                    if view != last:
                        last = view
                        if on_progress is not None:
                            on_progress(view)
                    if view["status"] in FINISHED:
                        return view
                    wait_s = (
                        poll_s if deadline is None else min(poll_s, deadline - time.monotonic())
                    )
                    if wait_s <= 0:
                        raise TimeoutError(f"job {job_id} not finished within {timeout} s")
                    self._next_event(wait_s, lambda event: _about_job(event, job_id))
                except MasterUnavailable:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
                    # The next call reconnects (and subscribes again), with backoff.
        finally:
            if added:
                self._topics.discard("jobs")
                self._forget_topics(["jobs"])

    def subscribe(
        self, topics: Sequence[str], timeout: float | None = None
    ) -> Generator[Event, None, None]:
        """The `event` notifications of `topics` (`jobs`, `tasks`, `clients`, `log:<task_id>`,
        …), as they come; the iterator ends after `timeout` seconds without one (None: never).
        A lost connection is reached again and the topics subscribed again.

            for event in farm.subscribe(["jobs"]):
                print(event.topic, event.data["id"], event.data["status"])
        """
        topics = list(topics)
        self._topics.update(topics)
        heard = time.monotonic()
        try:
            while True:
                try:
                    self._subscribe_on_connection(topics)
                    event = self._next_event(timeout, lambda event: event.topic in topics)
                except MasterUnavailable:
                    if timeout is not None and time.monotonic() - heard >= timeout:
                        return
                    time.sleep(0.2)  # connect() backs off further while the master is away
                    continue
                if event is None:
                    return
                heard = time.monotonic()
                yield event
        finally:
            self._topics.difference_update(topics)
            self._forget_topics(topics)

    def _subscribe_on_connection(self, topics: list[str]) -> None:
        self.connect()  # a new connection subscribes to every topic of the client at once
        missing = [topic for topic in topics if topic not in self._subscribed]
        if missing:
            self.request("subscribe", {"topics": missing})
            self._subscribed.update(missing)

    def _next_event(self, timeout: float | None, wanted: Callable[[Event], bool]) -> Event | None:
        connection = self._connection
        assert connection is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                note = connection.next_notification(left)
            except MasterUnavailable:
                self.close()
                raise
            if note is None:
                return None
            if note.method == "event":
                event = Event(str(note.params.get("topic", "")), note.params.get("data"))
                if wanted(event):
                    return event

    def _forget_topics(self, topics: list[str]) -> None:
        """Best effort: the master stops sending them and what is queued of them goes."""
        connection = self._connection
        gone = [topic for topic in topics if topic in self._subscribed]
        self._subscribed.difference_update(gone)
        if connection is None or not gone or not connection.alive():
            return
        connection.drop_notifications(lambda note: note.params.get("topic") in gone)
        try:
            connection.call("unsubscribe", {"topics": gone}, timeout=self.timeout)
        except (MasterUnavailable, TimeoutError, RpcError):
            self.close()


def _about_job(event: Event, job_id: int) -> bool:
    data = event.data
    return isinstance(data, dict) and job_id in (data.get("id"), data.get("job_id"))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return describe_tls_error(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
