"""TLS between the farm's programs (docs/security.md): the TLS port beside the plain one, certs
made by contrib/make-farm-ca.sh, agents and clients that verify the certificate and host name,
`openssl s_client` as a console, and what the port does with peers that do not speak TLS."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.rpc import MasterClient
from farmhand.options import MasterAddress
from tests.support import PROMPT, ROOT, MasterProcess, Program, RpcClient, wait_for
from tests.tlscerts import FarmCa, make_farm_ca, tls_connect


@pytest.fixture(scope="module")
def farm_ca(tmp_path_factory: pytest.TempPathFactory) -> FarmCa:
    # "localhost" only: tls://127.0.0.1 is then a host name the certificate does not cover.
    return make_farm_ca(tmp_path_factory.mktemp("ca"), "localhost")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> FarmCa:
    return make_farm_ca(tmp_path_factory.mktemp("other-ca"), "localhost")


@pytest.fixture
def master(tmp_path: Path, farm_ca: FarmCa) -> Iterator[MasterProcess]:
    config = tmp_path / "master.toml"
    config.write_text("tls_handshake_timeout_s = 1.0\n")
    process = MasterProcess(tmp_path / "var", *farm_ca.master_flags(), "--config", str(config))
    assert process.tls_port is not None
    yield process
    process.stop()


def worker(tmp_path: Path, master_address: str, *args: str) -> Program:
    index = len(list(tmp_path.glob("worker-*.log")))
    return Program(
        "worker.py",
        "--master",
        master_address,
        "--name",
        f"w{index}",
        "--work-dir",
        str(tmp_path / "work"),
        "--log-level",
        "debug",
        *args,
        log_path=tmp_path / f"worker-{index}.log",
    )


def online(port: int, name: str) -> bool:
    with RpcClient(port) as rpc:
        rows = rpc.call("clients.list", select=name)["clients"]
    return bool(rows and rows[0]["online"])


def test_a_worker_over_tls_runs_a_job_end_to_end(tmp_path: Path, farm_ca: FarmCa) -> None:
    process = MasterProcess(tmp_path / "var", *farm_ca.master_flags(), "--require-key")
    try:
        admin_key = (process.data_dir / "admin.key").read_text().strip()
        with RpcClient(process.port) as rpc:
            rpc.call("hello", role="api", name="", proto=1, key=admin_key)
            key = rpc.call("keys.create", role="worker", label="tls worker")["key"]
            agent = worker(
                tmp_path,
                f"tls://localhost:{process.tls_port}",
                "--key",
                key,
                "--ca",
                str(farm_ca.ca),
            )
            try:
                wait_for(lambda: "connected to tls://localhost" in agent.log(), what="TLS hello")
                done = tmp_path / "done.txt"
                code = f"open({str(done)!r}, 'w').write('frame {{frame}}')"
                job = rpc.call(
                    "jobs.submit", name="tls", argv=[sys.executable, "-c", code], frames="7"
                )
                wait_for(
                    lambda: rpc.call("jobs.get", job_id=job["job_id"])["status"] == "completed",
                    timeout=20,
                    what="the job to complete",
                )
                assert done.read_text() == "frame 7"
                assert "plaintext" not in agent.log()
            finally:
                assert agent.stop() == 0
        assert "TLSv1.3" in process.log() or "TLSv1.2" in process.log()
    finally:
        process.stop()


def test_json_rpc_and_the_console_both_work_over_tls(
    master: MasterProcess, farm_ca: FarmCa
) -> None:
    assert master.tls_port is not None
    with RpcClient(0, sock=tls_connect(master.tls_port, farm_ca.ca)) as rpc:
        assert rpc.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
        assert rpc.call("ping") == "pong"
        status = rpc.call("status")
        assert status["listen_tls"] == f"127.0.0.1:{master.tls_port}"
    with tls_connect(master.tls_port, farm_ca.ca) as console:
        console.sendall(b"ping\r\n")  # a console speaks first or not at all: both work
        data = b""
        while data.count(PROMPT) < 2:
            chunk = console.recv(65536)
            assert chunk, data
            data += chunk
        assert b"farmhand master" in data and b"pong" in data
    with tls_connect(master.tls_port, farm_ca.ca) as silent:
        # Silence after the handshake picks the console too (docs/protocol.md): the banner comes.
        data = b""
        while not data.endswith(PROMPT):
            chunk = silent.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"farmhand master")


def test_tls_below_1_2_is_refused(master: MasterProcess, farm_ca: FarmCa) -> None:
    assert master.tls_port is not None
    context = ssl.create_default_context(cafile=str(farm_ca.ca))
    # Let this client offer TLS 1.1 (OpenSSL's default security level would not even try).
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    # The master's answer: a protocol_version alert.
    with (
        socket.create_connection(("localhost", master.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def test_the_console_over_tls_works_with_openssl_s_client(
    master: MasterProcess, farm_ca: FarmCa
) -> None:
    command = [
        "openssl",
        "s_client",
        "-quiet",
        "-verify_return_error",
        "-CAfile",
        str(farm_ca.ca),
        "-verify_hostname",
        "localhost",
        "-connect",
        f"localhost:{master.tls_port}",
    ]
    result = subprocess.run(
        command, input=b"ping\r\nstatus\r\nquit\r\n", capture_output=True, timeout=30
    )
    out = result.stdout.decode()
    assert result.returncode == 0, (out, result.stderr.decode())
    assert out.startswith("farmhand master"), out
    assert "pong" in out and f"tls://127.0.0.1:{master.tls_port}" in out and "bye" in out
    # The master ends the session with close_notify: s_client sees a clean end of stream.
    assert b"unexpected eof" not in result.stderr.lower()


def test_a_client_that_does_not_trust_the_ca_fails(
    tmp_path: Path, master: MasterProcess, other_ca: FarmCa
) -> None:
    assert master.tls_port is not None
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(master.tls_port, other_ca.ca)
    agent = worker(tmp_path, f"tls://localhost:{master.tls_port}", "--ca", str(other_ca.ca))
    try:
        # One clear line per try, and it keeps trying (with backoff).
        wait_for(lambda: agent.log().count("reconnecting in") >= 2, what="two retries")
        lines = [line for line in agent.log().splitlines() if "not trusted" in line]
        assert lines and "ERROR" in lines[0] and "unable to get local issuer" in lines[0], lines
        assert "Traceback" not in agent.log()
        assert not online(master.port, "w0")
    finally:
        assert agent.stop() == 0


def test_a_wrong_host_name_fails(tmp_path: Path, master: MasterProcess, farm_ca: FarmCa) -> None:
    assert master.tls_port is not None
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        tls_connect(master.tls_port, farm_ca.ca, host="127.0.0.1")
    # The right CA, but the certificate names "localhost", not 127.0.0.1.
    agent = worker(tmp_path, f"tls://127.0.0.1:{master.tls_port}", "--ca", str(farm_ca.ca))
    try:
        wait_for(lambda: "not trusted" in agent.log(), what="the refusal")
        assert "mismatch" in agent.log()
        assert not online(master.port, "w0")
    finally:
        assert agent.stop() == 0


@pytest.mark.parametrize(
    "payload",
    [
        b"submit x -- touch {marker}\r\n",
        b'{{"jsonrpc":"2.0","id":1,"method":"jobs.submit","params":{{"name":"x",'
        b'"argv":["touch","{marker}"]}}}}\n',
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n\nsubmit x -- touch {marker}\n",
    ],
    ids=["console", "json-rpc", "http"],
)
def test_plain_bytes_on_the_tls_port_get_no_answer(
    tmp_path: Path, master: MasterProcess, payload: bytes
) -> None:
    assert master.tls_port is not None
    marker = tmp_path / "ran"
    with socket.create_connection(("127.0.0.1", master.tls_port), timeout=10) as sock:
        sock.sendall(payload.replace(b"{marker}", str(marker).encode()))
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    # No banner, no reply: at most a TLS alert record (content type 21), then the close.
    assert answer == b"" or answer[0] == 21, answer
    with RpcClient(master.port) as rpc:
        assert rpc.call("jobs.list")["total"] == 0
    assert not marker.exists()
    assert "TLS handshake failed" in master.log()


def test_a_silent_peer_is_closed_after_the_handshake_timeout(master: MasterProcess) -> None:
    assert master.tls_port is not None
    with socket.create_connection(("127.0.0.1", master.tls_port), timeout=10) as sock:
        began = time.monotonic()
        assert sock.recv(65536) == b""  # no banner: the TLS port waits for a ClientHello
        waited = time.monotonic() - began
    assert 0.9 <= waited < 5, waited  # tls_handshake_timeout_s = 1.0 in the fixture
    assert "no TLS handshake within 1.0s" in master.log()


def test_the_plain_port_keeps_serving(master: MasterProcess, farm_ca: FarmCa) -> None:
    assert master.tls_port is not None
    with tls_connect(master.tls_port, farm_ca.ca), RpcClient(master.port) as rpc:
        assert rpc.call("ping") == "pong"
        status = rpc.call("status")
        assert status["listen"] == f"127.0.0.1:{master.port}"
        assert status["warnings"] == []  # loopback only: nothing is exposed


def run_master(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "master.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_bad_tls_files_give_one_line_and_exit_2(tmp_path: Path, farm_ca: FarmCa) -> None:
    other = make_farm_ca(tmp_path / "other", "localhost")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    data = ["--port", "0", "--data-dir", str(tmp_path / "var")]
    cert, key = str(farm_ca.cert), str(farm_ca.key)
    cases = {
        "does not exist": ["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", key],
        "cannot use TLS certificate": ["--tls-cert", str(garbage), "--tls-key", key],
        "KEY_VALUES_MISMATCH": ["--tls-cert", cert, "--tls-key", str(other.key)],
    }
    for expected, flags in cases.items():
        result = run_master(*data, "--tls-port", "0", *flags)
        assert result.returncode == 2, (flags, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("master.py: error:"), result.stderr
        assert expected in lines[0], lines[0]
    result = run_master(*data, "--tls-port", "0", "--tls-cert", cert)
    assert result.returncode == 2
    assert "add --tls-key" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_non_loopback_plaintext_bind_warns_loudly(tmp_path: Path, farm_ca: FarmCa) -> None:
    # 192.0.2.1 (TEST-NET-1) is not this machine's: the bind fails, after the warnings.
    data = ["--port", "0", "--data-dir", str(tmp_path / "var")]
    result = run_master("--host", "192.0.2.1", *data)
    warnings = [line for line in result.stderr.splitlines() if "WARNING: EXPOSED" in line]
    assert len(warnings) == 2, result.stderr
    assert "without TLS" in warnings[0] and "plaintext" in warnings[0]
    assert "--require-key" in warnings[1] and "admin" in warnings[1]
    assert "cannot listen on 192.0.2.1" in result.stderr
    guarded = run_master("--host", "192.0.2.1", *data, "--require-key", *farm_ca.master_flags())
    assert "EXPOSED" not in guarded.stderr, guarded.stderr


def test_the_dashboard_talks_to_a_tls_master(
    master: MasterProcess, farm_ca: FarmCa, other_ca: FarmCa
) -> None:
    address = MasterAddress("localhost", master.tls_port or 0, tls=True)
    client = MasterClient(address, ca=farm_ca.ca)
    client.start()
    try:
        assert client.wait_connected(10), client.last_error
        assert client.call("ping") == "pong"
    finally:
        client.stop()
    untrusting = MasterClient(address, ca=other_ca.ca)
    untrusting.start()
    try:
        assert not untrusting.wait_connected(1)
        assert "not trusted" in untrusting.last_error
    finally:
        untrusting.stop()
    # The dashboard's own command line: create-admin over tls:// with --ca.
    command = [sys.executable, "-m", "dashboard", "create-admin", "boss"]
    command += ["--master", f"tls://localhost:{master.tls_port}", "--ca", str(farm_ca.ca)]
    done = subprocess.run(
        command, input="boss-password-1\n", capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "created admin boss" in done.stdout
