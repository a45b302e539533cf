"""The worker's service: a fixed number of slots, the `task.run` / `task.cancel` /
`worker.stop` orders, and what the agent runtime asks of a worker (`running()` for heartbeats,
`attempts()` for hello, and `on_connected(link)` to resume delivering reports after each
reconnect).

`worker.stop {action, when}` (the master's clients.stop / clients.restart): the worker takes no
new task from then on; `now` kills its running tasks' process groups (as a timeout does),
`idle` lets them finish; once none runs and their reports are delivered, `on_stopped` is called
with the exit code of the action (farmhand/agent/exits.py) and the program exits with it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

from farmhand.agent.exits import EXIT_CODES
from farmhand.agent.link import MasterLink, OrderHandler
from farmhand.worker.previews import PreviewMaker
from farmhand.worker.reports import ReportQueue
from farmhand.worker.taskgroups import TaskGroups
from farmhand.worker.taskorder import TaskOrder
from farmhand.worker.taskpolicy import TaskPolicy
from farmhand.worker.taskprocess import TaskProcess
from protocol.errors import conflict, invalid_params

log = logging.getLogger(__name__)

# Attempts whose result was delivered, remembered so a repeated `task.run` stays a no-op.
REMEMBERED_ATTEMPTS = 1000
SHUTDOWN_POLL_S = 0.05
# After a stop order's tasks ended: how long their results may take to reach the master.
STOP_REPORT_S = 10.0


class WorkerService:
    def __init__(
        self,
        *,
        slots: int,
        work_dir: Path,
        kill_grace_s: float = 5.0,
        reports: ReportQueue | None = None,
        policy: TaskPolicy | None = None,
        groups: TaskGroups | None = None,
        previews: PreviewMaker | None = None,
        on_stopped: Callable[[int], None] | None = None,
    ) -> None:
        self.slots = slots
        self.work_dir = work_dir
        self.policy = policy or TaskPolicy(work_dir)
        # Without it (in tests of the service alone) a task can outlive a killed worker.
        self.groups = groups
        self.kill_grace_s = kill_grace_s
        self.reports = reports or ReportQueue()
        self.previews = previews or PreviewMaker(self.reports)
        self._tasks: dict[str, TaskProcess] = {}
        self._finished: deque[str] = deque(maxlen=REMEMBERED_ATTEMPTS)
        self._stopping = False
        # Called with the exit code once a stop order is carried out (worker.py exits).
        self.on_stopped = on_stopped or (lambda code: None)
        self.stop_order: dict[str, str] | None = None

    @property
    def handlers(self) -> dict[str, OrderHandler]:
        return {
            "task.run": self.run_task,
            "task.cancel": self.cancel_task,
            "worker.stop": self.stop_worker,
        }

    def running(self) -> list[str]:
        """Attempts whose process is still running (heartbeat `running`)."""
        return [attempt for attempt, task in self._tasks.items() if task.running]

    def attempts(self) -> list[str]:
        """Every attempt this worker still holds: running, or with undelivered reports."""
        self._forget_done()
        held = dict.fromkeys(self.running())
        held.update(dict.fromkeys(self.reports.attempts()))
        return list(held)

    def hello_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"attempts": self.attempts()}
        if self.stop_order is not None:
            params["stopping"] = self.stop_order  # a master that forgot it must not order more
        return params

    def on_connected(self, link: MasterLink) -> None:
        self.reports.deliver_over(link)

    def run_task(self, params: dict[str, Any]) -> dict[str, Any]:
        order = TaskOrder.from_params(params)
        attempt = order.attempt
        self._forget_done()
        if (
            attempt in self._tasks
            or attempt in self._finished
            or attempt in (self.reports.attempts())
        ):
            log.info("attempt %s: task.run repeated; already known", attempt)
            return {}
        if self._stopping:
            raise conflict("the worker is shutting down", "shutting_down")
        busy = len(self.running())
        if busy >= self.slots:
            log.info("attempt %s: refused, all %d slot(s) busy", attempt, self.slots)
            raise conflict(f"all {self.slots} slot(s) are busy", "no_free_slot")
        task = TaskProcess(
            order,
            reports=self.reports,
            policy=self.policy,
            groups=self.groups,
            kill_grace_s=self.kill_grace_s,
        )
        self._tasks[attempt] = task
        task.done.rawlink(lambda _event: self._task_done(task))
        log.info(
            "attempt %s: accepted (job %s task %s), slot %d of %d",
            attempt,
            order.job_id,
            order.task_id,
            busy + 1,
            self.slots,
        )
        task.start()
        return {}

    def _task_done(self, task: TaskProcess) -> None:
        if task.exit_code == 0 and task.error is None:
            self.previews.task_succeeded(task.order, task.cwd)

    def cancel_task(self, params: dict[str, Any]) -> dict[str, Any]:
        attempt = params.get("attempt")
        if not isinstance(attempt, str) or not attempt:
            raise invalid_params("attempt must be a non-empty string")
        task = self._tasks.get(attempt)
        if task is None:
            log.info("attempt %s: cancel for an unknown attempt", attempt)
            return {"known": False}
        task.cancel()
        return {"known": True}

    def stop_worker(self, params: dict[str, Any]) -> dict[str, Any]:
        """The master's stop or restart order: no new task; `now` kills the running ones."""
        action, when = params.get("action"), params.get("when")
        if action not in EXIT_CODES:
            raise invalid_params(f"action must be one of {', '.join(EXIT_CODES)}, not {action!r}")
        if when not in ("now", "idle"):
            raise invalid_params(f"when must be now or idle, not {when!r}")
        running = self.running()
        if self.stop_order is None:
            self._stopping = True
            self.stop_order = {"action": action, "when": when}
            log.info(
                "%s ordered by the master (%s): %d task(s) running", action, when, len(running)
            )
            gevent.spawn(self._carry_out_stop, action, when)
        elif when == "now" and self.stop_order["when"] == "idle":
            self.stop_order = {"action": action, "when": when}
            self._cancel_running(f"{action} now")
        return {"running": running}

    def _carry_out_stop(self, action: str, when: str) -> None:
        if when == "now":
            self._cancel_running(f"{action} now")
        while self.running():
            gevent.sleep(SHUTDOWN_POLL_S)
        deadline = time.monotonic() + STOP_REPORT_S
        while self.reports.attempts() and time.monotonic() < deadline:
            gevent.sleep(SHUTDOWN_POLL_S)
        assert self.stop_order is not None
        code = EXIT_CODES[self.stop_order["action"]]
        log.info("%s: no task left; exiting with code %d", self.stop_order["action"], code)
        self.on_stopped(code)

    def _cancel_running(self, why: str) -> None:
        running = self.running()
        if running:
            log.info("%s: killing %s", why, ", ".join(running))
        for attempt in running:
            self._tasks[attempt].cancel()

    def shutdown(self, timeout_s: float) -> None:
        """Cancel what still runs and give the results a chance to reach the master."""
        self._stopping = True
        running = self.running()
        if running:
            log.info("shutting down: canceling %s", ", ".join(running))
        for attempt in running:
            self._tasks[attempt].cancel()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (
            self.running() or (self.reports.attempts() and self.reports.connected)
        ):
            gevent.sleep(SHUTDOWN_POLL_S)
        if self.reports.attempts():
            log.warning(
                "shutting down with undelivered reports for %s", ", ".join(self.reports.attempts())
            )

    def _forget_done(self) -> None:
        """Drop finished tasks whose reports are delivered; remember their ids."""
        undelivered = set(self.reports.attempts())
        for attempt, task in list(self._tasks.items()):
            if not task.running and attempt not in undelivered:
                del self._tasks[attempt]
                self._finished.append(attempt)
