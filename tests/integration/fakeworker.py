"""A fake worker driven by the test over a real socket, and small job helpers.

`FakeWorker` says hello as role `worker` with `info` {slots, tags} (and `attempts` after a
master restart), keeps itself online with `heartbeat` notifications from a background thread,
takes the master's orders (`task.run`, `task.cancel`) and reports like `worker.py` does:
`task.started`, `task.output`, `task.progress` as notifications and `task.finished` as a request
answered once the master stored the result. Nothing of the master is mocked.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from protocol.errors import ErrorCode, RpcError
from protocol.jsonrpc import encode_error, encode_result
from tests.support import RpcClient, RpcFailure, wait_for

ORDER_TIMEOUT_S = 5.0


class FakeWorker(RpcClient):
    def __init__(
        self,
        port: int,
        name: str,
        slots: int = 1,
        tags: tuple[str, ...] | list[str] = (),
        attempts: list[str] | None = None,
        heartbeat_s: float | None = 0.2,
    ) -> None:
        super().__init__(port)
        self.name = name
        self._send_lock = threading.Lock()
        self._stop_beating = threading.Event()
        params: dict[str, Any] = {"info": {"slots": slots, "tags": list(tags)}}
        if attempts is not None:
            params["attempts"] = attempts
        self.welcome = self.call("hello", role="worker", name=name, proto=1, **params)
        self._beat: threading.Thread | None = None
        if heartbeat_s:
            self._beat = threading.Thread(target=self._beat_loop, args=(heartbeat_s,), daemon=True)
            self._beat.start()

    # -- staying online -------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        with self._send_lock:  # the heartbeat thread writes too
            self.sock.sendall(data)

    def _beat_loop(self, interval: float) -> None:
        while not self._stop_beating.wait(interval):
            try:
                self.notify("heartbeat")
            except OSError:
                return

    def stop_heartbeat(self) -> None:
        """Go silent (the socket stays open): the master times this worker out."""
        self._stop_beating.set()
        if self._beat is not None:
            self._beat.join()

    def close(self) -> None:
        self.stop_heartbeat()
        super().close()

    # -- orders from the master -----------------------------------------------------------------
    def next_order(self, method: str = "task.run", timeout: float = ORDER_TIMEOUT_S) -> dict:
        """The next request `method` from the master (kept ones first), unanswered."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.requests:
                if message["method"] == method:
                    self.requests.remove(message)
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no {method} order within {timeout}s")
            self.sock.settimeout(remaining)
            try:
                message = self.read_message()
            except TimeoutError:
                continue
            finally:
                self.sock.settimeout(10.0)
            if "method" in message and "id" in message:
                self.requests.append(message)
            elif "method" in message:
                self.events.append(message)

    def answer(self, order: dict, result: Any = None) -> None:
        self.send_raw(encode_result(order["id"], {} if result is None else result))

    def refuse(self, order: dict, code: int, message: str, reason: str) -> None:
        self.send_raw(encode_error(order["id"], RpcError(ErrorCode(code), message, reason)))

    def take(self, timeout: float = ORDER_TIMEOUT_S) -> dict:
        """Accept the next `task.run` ({}); its params (attempt, task_id, argv, …)."""
        order = self.next_order("task.run", timeout)
        self.answer(order)
        return order["params"]

    def take_cancel(self, timeout: float = ORDER_TIMEOUT_S) -> dict:
        order = self.next_order("task.cancel", timeout)
        self.answer(order)
        return order["params"]

    def expect_no_order(self, method: str = "task.run", within: float = 0.5) -> None:
        """Nothing of `method` arrives within `within` seconds."""
        try:
            order = self.next_order(method, within)
        except AssertionError:
            return
        raise AssertionError(f"{self.name} got an unexpected {method}: {order['params']}")

    # -- reports --------------------------------------------------------------------------------
    def started(self, attempt: str) -> None:
        self.notify("task.started", attempt=attempt, pid=4242)

    def output(self, attempt: str, data: str) -> None:
        self.notify("task.output", attempt=attempt, data=data)

    def progress(self, attempt: str, percent: float) -> None:
        self.notify("task.progress", attempt=attempt, percent=percent)

    def finished(self, attempt: str, exit_code: int | None = 0, error: str | None = None) -> dict:
        """The master's whole reply to task.finished (result or error)."""
        return self.request(
            "task.finished", attempt=attempt, exit_code=exit_code, error=error, duration_s=0.01
        )

    def complete(self, task: dict, exit_code: int = 0, output: str | None = None) -> None:
        """Start, optionally print, and finish a task; the master must acknowledge with {}."""
        self.started(task["attempt"])
        if output is not None:
            self.output(task["attempt"], output)
        reply = self.finished(task["attempt"], exit_code)
        assert reply.get("result") == {}, reply


# -- helpers for the operator's side ------------------------------------------------------------
def submit(api: RpcClient, name: str = "job", **params: Any) -> int:
    params.setdefault("argv", ["render", "{job}", "{task}"])
    return api.call("jobs.submit", name=name, **params)["job_id"]


def job_view(api: RpcClient, job_id: int) -> dict:
    return api.call("jobs.get", job_id=job_id)


def tasks_of(api: RpcClient, job_id: int) -> list[dict]:
    return api.call("tasks.list", job_id=job_id)["tasks"]


def task_view(api: RpcClient, job_id: int, task_id: int) -> dict:
    return next(task for task in tasks_of(api, job_id) if task["id"] == task_id)


def wait_job(api: RpcClient, job_id: int, status: str, timeout: float = 5.0) -> dict:
    return wait_for(
        lambda: (view := job_view(api, job_id))["status"] == status and view,
        timeout=timeout,
        what=f"job {job_id} to be {status}",
    )


def wait_task(api: RpcClient, job_id: int, task_id: int, status: str, timeout: float = 5.0) -> dict:
    return wait_for(
        lambda: (view := task_view(api, job_id, task_id))["status"] == status and view,
        timeout=timeout,
        what=f"task {task_id} to be {status}",
    )


def error_of(api: RpcClient, method: str, **params: Any) -> RpcFailure:
    """The RpcFailure that `method` must raise."""
    try:
        result = api.call(method, **params)
    except RpcFailure as failure:
        return failure
    raise AssertionError(f"{method}({params}) succeeded: {result}")
