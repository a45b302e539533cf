"""The public client (farmhand/client.py) against a real master: calls and errors, the
typed helpers, waiting for a job, events, address lists, reconnecting, keys, TLS with a CA,
timeouts, and proof that it runs on the standard library alone (orjson and gevent blocked)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from farmhand.blocking import Connection
from farmhand.client import Client, Event, MasterUnavailable, RpcError
from protocol.errors import ErrorCode
from protocol.jsonrpc import encode_result
from tests.support import ROOT, MasterProcess, Program
from tests.tlscerts import make_farm_ca


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def farm(master: MasterProcess) -> Iterator[Client]:
    with Client(master.address) as client:
        yield client


def test_call_returns_the_result_and_raises_rpc_errors_with_code_message_data(
    farm: Client,
) -> None:
    assert farm.call("ping") == "pong"
    assert farm.request("ping", {}, timeout=5) == "pong"
    with pytest.raises(RpcError) as missing:
        farm.job(4242)
    assert missing.value.code == ErrorCode.NOT_FOUND == -32004
    assert "4242" in missing.value.message
    with pytest.raises(RpcError) as typo:
        farm.call("clients.list", selct="w*")
    assert typo.value.code == ErrorCode.INVALID_PARAMS
    assert typo.value.reason == "unknown_param"
    assert isinstance(typo.value.data, dict)
    with pytest.raises(RpcError) as unknown:
        farm.call("no.such.method")
    assert unknown.value.code == ErrorCode.METHOD_NOT_FOUND
    assert farm.call("ping") == "pong"  # errors leave the connection usable


def test_submit_wait_and_the_read_helpers(farm: Client, worker: Program) -> None:
    job_id = farm.submit(
        "client-job",
        [sys.executable, "-c", "print('frame {frame}')"],
        frames="1-3",
        priority=60,
        tags=[],
    )
    seen: list[dict] = []
    view = farm.wait(job_id, timeout=30, on_progress=seen.append)
    assert view["status"] == "completed" and view["progress"] == 100
    assert seen and seen[-1] == view
    assert [job["id"] for job in farm.jobs()] == [job_id]
    assert farm.jobs("failed") == []
    assert farm.job(job_id)["priority"] == 60
    tasks = farm.tasks(job_id)
    assert [task["frames"] for task in tasks] == ["1", "2", "3"]
    log = farm.log(tasks[1]["id"])
    assert "frame 2" in log["text"] and log["complete"]
    assert [client["name"] for client in farm.clients("role=worker")] == ["w1"]


def test_wait_reports_a_failed_job_and_times_out_on_one_that_never_runs(farm: Client) -> None:
    # No worker has the tag: the job stays queued.
    job_id = farm.submit("never", ["true"], tags=["nowhere"])
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        farm.wait(job_id, timeout=0.6, poll_s=0.2)
    assert time.monotonic() - started < 5
    farm.call("jobs.cancel", job_id=job_id)
    assert farm.wait(job_id, timeout=10)["status"] == "canceled"


def test_subscribe_yields_events_and_ends_after_a_silence(
    farm: Client, master: MasterProcess
) -> None:
    events = farm.subscribe(["jobs"], timeout=2.0)
    submitted: list[int] = []
    with Client(master.address) as other:
        # The subscription is made by the first next(): submit once it is in place.
        timer = threading.Timer(0.3, lambda: submitted.append(other.submit("e", ["true"])))
        timer.start()
        first = next(events)
        timer.join()
    assert isinstance(first, Event) and first.topic == "jobs"
    assert first.data["id"] == submitted[0]
    started = time.monotonic()
    assert list(events) == []  # nothing more happens: it ends after 2 s of silence
    assert 1.5 < time.monotonic() - started < 6


def test_a_list_of_addresses_is_tried_in_turn(master: MasterProcess) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with Client(f"{dead},{master.address}") as farm:
        assert farm.call("ping") == "pong"
        assert str(farm.master) == master.address


def test_no_master_gives_master_unavailable_after_the_reconnect_time() -> None:
    farm = Client(f"127.0.0.1:{free_port()}", reconnect_s=0.5)
    started = time.monotonic()
    with pytest.raises(MasterUnavailable, match="no master answers"):
        farm.call("ping")
    assert time.monotonic() - started < 5
    assert isinstance(MasterUnavailable("x"), ConnectionError)


def test_a_restarted_master_is_reached_again_and_subscriptions_resume(tmp_path: Path) -> None:
    port = free_port()
    master = MasterProcess(tmp_path / "var", "--port", str(port))
    try:
        farm = Client(f"127.0.0.1:{port}", reconnect_s=20)
        assert farm.call("ping") == "pong"
        events = farm.subscribe(["jobs"], timeout=20)
        master.stop()
        master = MasterProcess(tmp_path / "var", "--port", str(port))
        # The next call finds the connection gone and reconnects (with backoff).
        assert farm.call("ping") == "pong"
        with Client(f"127.0.0.1:{port}") as other:
            timer = threading.Timer(0.5, lambda: other.submit("after-restart", ["true"]))
            timer.start()
            event = next(events)
            timer.join()
        assert event.topic == "jobs" and event.data["name"] == "after-restart"
        farm.close()
    finally:
        master.stop()


def test_a_master_that_requires_keys(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "var", "--require-key")
    try:
        admin_key = (master.data_dir / "admin.key").read_text().strip()
        with pytest.raises(RpcError) as refused, Client(master.address) as farm:
            farm.call("jobs.list")
        assert refused.value.code == ErrorCode.UNAUTHORIZED
        with Client(master.address, key=admin_key) as farm:
            key = farm.call("keys.create", role="api", scope="read")["key"]
        with Client(master.address, key="fhk_bogus_key") as farm, pytest.raises(RpcError) as bad:
            farm.call("ping")
        assert bad.value.code == ErrorCode.UNAUTHORIZED
        with Client(master.address, key=key) as farm:
            assert farm.jobs() == []
            with pytest.raises(RpcError) as read_only:
                farm.submit("x", ["true"])
            assert read_only.value.code == ErrorCode.UNAUTHORIZED
    finally:
        master.stop()


def test_tls_with_a_ca_checks_the_certificate_and_the_host_name(tmp_path: Path) -> None:
    ca = make_farm_ca(tmp_path / "ca", "localhost")
    other = make_farm_ca(tmp_path / "other", "localhost")
    master = MasterProcess(tmp_path / "var", *ca.master_flags())
    try:
        with Client(f"tls://localhost:{master.tls_port}", ca=ca.ca) as farm:
            assert farm.call("ping") == "pong"
        for address, trust in (
            (f"tls://localhost:{master.tls_port}", other.ca),  # another CA
            (f"tls://127.0.0.1:{master.tls_port}", ca.ca),  # a name not in the certificate
        ):
            started = time.monotonic()
            with (
                pytest.raises(MasterUnavailable, match="not trusted"),
                Client(address, ca=trust) as farm,
            ):
                farm.call("ping")
            assert time.monotonic() - started < 5  # no retrying what cannot succeed
    finally:
        master.stop()


def answer_hello_only(listener: socket.socket) -> None:
    """A stand-in master that says hello and then reads everything and answers nothing."""
    conn, _ = listener.accept()
    with conn:
        request = orjson.loads(conn.recv(65536).split(b"\n")[0])
        conn.sendall(encode_result(request["id"], {"client_id": None, "name": "x"}))
        while conn.recv(65536):
            pass


def test_a_call_without_an_answer_times_out_and_the_next_call_reconnects() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=answer_hello_only, args=(listener,), daemon=True).start()
    try:
        farm = Client(f"127.0.0.1:{listener.getsockname()[1]}", timeout=0.5, reconnect_s=0.5)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            farm.call("ping")
        assert 0.4 < time.monotonic() - started < 3
        # That connection is dropped; the stand-in accepts no second one and stays silent.
        with pytest.raises(MasterUnavailable):
            farm.call("ping")
    finally:
        listener.close()


STDLIB_ONLY = textwrap.dedent(
    """
    import sys

    class Blocked:
        # What Blender's Python does not have: importing it must not be needed.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"orjson", "gevent", "greenlet", "psutil", "peewee"}:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocked())
    from farmhand.client import Client
    import farmhand.cli.main  # the `farmhand` command is stdlib-only too
    import protocol.jsonrpc

    with Client(sys.argv[1]) as farm:
        assert farm.call("ping") == "pong"
        job_id = farm.submit("stdlib", ["true"], frames="1-2", tags=["nowhere"])
        assert farm.job(job_id)["tasks_total"] == 2
    ours = {"farmhand", "protocol"}
    foreign = sorted(
        name
        for name in sys.modules
        if name.split(".")[0] not in sys.stdlib_module_names | ours | {"__main__"}
    )
    print(protocol.jsonrpc.JSON_BACKEND, foreign)
    """
)


def test_the_client_runs_on_the_standard_library_alone(master: MasterProcess) -> None:
    # -I -S: no PYTHONPATH, no site-packages, not even the current directory: the standard
    # library and the checkout only (and the blocker, should anything look further).
    script = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + STDLIB_ONLY
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, master.address],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["json", "[]"]


def test_answers_longer_than_the_masters_own_line_limit_are_read(master: MasterProcess) -> None:
    """The master accepts lines of 1 MiB, but its answers may be longer (clients.list of a
    10,000-agent farm is 2 MB): the client and the dashboard read them."""
    padding = "x" * 8000
    with contextlib.closing(
        Connection(socket.create_connection(("127.0.0.1", master.port)))
    ) as rpc:
        rpc.call_many(
            [("jobs.submit", {"name": f"big-{n}", "argv": ["true", padding]}) for n in range(200)]
        )
    with Client(master.address) as farm:
        assert len(farm.jobs(limit=1000)) == 200  # ~1.7 MB in one line

    from dashboard.rpc import MasterClient
    from farmhand.options import parse_address

    dashboard = MasterClient(parse_address(master.address))
    dashboard.start()
    try:
        assert dashboard.wait_connected(10), dashboard.last_error
        assert len(dashboard.call("jobs.list", {"limit": 1000})["jobs"]) == 200
    finally:
        dashboard.stop()
