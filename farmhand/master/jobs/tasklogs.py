"""Task logs: plain files under DATA_DIR/logs/job-<id>/, not in the database.

Each attempt starts with a header line (`--- farmhand: attempt … ---`); output is appended as it
arrives and streamed to `log:<task_id>` subscribers. Reads go by byte offset and never split a
UTF-8 character. Old jobs' logs are removed after the retention period by `prune(now)`.

A task gets its own file, `task-<id>.log`, only once it prints something. Until then the
master's own lines about it go to the job's `farmhand.log`, one file per job, each line
prefixed with the task id; a read joins the task's lines from there (everything written before
its own file existed) and its own file. A silent task thus costs no file at all, and the
master's lines about it are still served by `tasks.log`.

File work runs in one writer thread: creating a file per task cost the hub ~40% of its time at
full dispatch rate (bench/dispatch.py). The hub only appends to a list and hands the master's
own lines over at most every HANDOFF_S (10 ms), not once per line (a task's output goes at
once: nobody sends it again if the master dies with it queued); the thread drains it, and
reads go through the same thread after handing over what is queued, so they see every write
made before them.
The journal calls `sync()` before each commit: a task's lines are in their files before its
result is stored, so a master killed right after a commit loses none of a stored task's log.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

import gevent
from gevent.threadpool import ThreadPool

from models.jobstore import TaskRecord
from protocol.times import iso_utc

from ..events import EventBus

log = logging.getLogger(__name__)

MAX_OPEN_FILES = 256
MAX_OPEN_JOB_FILES = 32
DEFAULT_READ_BYTES = 64 * 1024
MAX_READ_BYTES = 1 << 20
JOB_LINES_FILENAME = "farmhand.log"


class Write:
    """One queued piece of log work (hub → writer thread)."""

    __slots__ = ("close", "data", "job_id", "marker", "output", "task_id")

    def __init__(
        self,
        job_id: int,
        task_id: int,
        data: bytes | None,
        *,
        output: bool = False,
        close: bool = False,
        marker: bytes | None = None,
    ) -> None:
        self.job_id = job_id
        self.task_id = task_id
        self.data = data  # bytes to append, or None
        self.output = output  # the task's own output (gives it its own file), or the master's
        self.close = close  # close the task's file afterwards
        self.marker = marker  # when set, skip `data` if the log's tail already holds it


TAIL_CHECK_BYTES = 4096
HANDOFF_S = 0.01  # how long log lines may wait on the hub for the writer thread


class TaskLogs:
    def __init__(self, root: Path, events: EventBus) -> None:
        self.root = root
        self.events = events
        self._pool = ThreadPool(1)
        self._lock = threading.Lock()
        self._writes: list[Write] = []
        self._draining = False
        self._handoff_due = False  # a hub callback will hand the queued writes to the thread
        self.handoffs = 0  # batches handed to the writer thread (tests, benches)
        self._closed = False
        # Owned by the writer thread:
        self._open: OrderedDict[int, IO[bytes]] = OrderedDict()
        self._job_files: OrderedDict[int, IO[bytes]] = OrderedDict()
        self._folders: set[int] = set()

    def path(self, job_id: int, task_id: int) -> Path:
        """The task's own file (it exists once the task printed something)."""
        return self.root / f"job-{job_id}" / f"task-{task_id}.log"

    def job_lines_path(self, job_id: int) -> Path:
        """The master's lines about the job's tasks that have no file of their own yet."""
        return self.root / f"job-{job_id}" / JOB_LINES_FILENAME

    # -- hub side ------------------------------------------------------------------------------
    def begin_attempt(self, task: TaskRecord, attempt: str, worker: str, now: float) -> None:
        self.append(task, f"--- farmhand: attempt {attempt} on {worker} at {iso_utc(now)} ---\n")

    def append(self, task: TaskRecord, text: str, unless: str | None = None) -> None:
        """Append one of the master's lines; with `unless`, only if the log does not already
        end with that marker (a result re-sent after a master crash must not end it twice)."""
        marker = unless.encode() if unless is not None else None
        self._enqueue(Write(task.job_id, task.id, text.encode("utf-8", "replace"), marker=marker))
        self._publish(task, text)

    def output(self, task: TaskRecord, text: str) -> None:
        """Append the task's own output (its first output creates its file). Handed to the
        writer at once, not after HANDOFF_S: a worker does not send output twice, so output
        waiting on the hub when the master is killed would be lost for good (the master's own
        lines come back: a resent result writes its `ended:` line)."""
        self._enqueue(
            Write(task.job_id, task.id, text.encode("utf-8", "replace"), output=True),
            at_once=True,
        )
        self._publish(task, text)

    def close(self, task: TaskRecord) -> None:
        self._enqueue(Write(task.job_id, task.id, None, close=True))

    def _publish(self, task: TaskRecord, text: str) -> None:
        topic = f"log:{task.id}"
        if self.events.has_subscribers(topic):
            self.events.publish(topic, {"task_id": task.id, "text": text})

    def _enqueue(self, write: Write, *, at_once: bool = False) -> None:
        with self._lock:
            self._writes.append(write)
            if self._draining:
                return  # the writer thread takes it before it stops
            now = at_once and not self._closed
            if now:
                self._draining = True
            elif self._handoff_due:
                return
            else:
                self._handoff_due = True
        if now:
            self.handoffs += 1
            self._pool.spawn(self._drain)
            return
        # Hand over at most every HANDOFF_S: dispatch batches and bursts of reports become one
        # handoff to the writer thread (a thread-pool spawn costs the hub tens of µs), not one
        # per line. Reads hand over at once, so they still see every write before them.
        timer = gevent.get_hub().loop.timer(HANDOFF_S)
        timer.start(self._hand_off, timer)

    def _hand_off(self, timer: Any = None) -> None:
        if timer is not None:
            timer.close()
        with self._lock:
            self._handoff_due = False
            if self._draining or not self._writes or self._closed:
                return
            self._draining = True
        self.handoffs += 1
        self._pool.spawn(self._drain)

    def sync(self) -> None:
        """Wait (cooperatively) until every line queued so far is written to its file: the
        journal calls this before each commit (a kill -9 then loses no line of a stored result;
        the files are written unbuffered, so what is written is in the OS)."""
        with self._lock:
            idle = not self._writes and not self._draining
        if idle or self._closed:
            return
        self._hand_off()
        self._pool.spawn(_written).get()  # one writer thread, in order: after the drain

    def read(self, task: TaskRecord, offset: int, limit: int | None) -> dict[str, Any]:
        limit = min(limit or DEFAULT_READ_BYTES, MAX_READ_BYTES)
        self._hand_off()  # the thread runs its work in order: the writes queued so far first
        result: dict[str, Any] = self._pool.spawn(self._read, task, offset, limit).get()
        return result

    def close_all(self) -> None:
        self._pool.spawn(self._close_all).get()
        self._closed = True  # a handoff timer still armed finds nothing to do
        self._pool.kill()

    def prune(self, finished_before: dict[int, float], retention_s: float, now: float) -> int:
        """Remove the log folders of jobs (id → finish time) finished before now - retention."""
        old = [
            job_id for job_id, finished in finished_before.items() if finished < now - retention_s
        ]
        removed: int = self._pool.spawn(self._remove_folders, old).get() if old else 0
        if removed:
            log.info("removed the task logs of %d old jobs", removed)
        return removed

    def remove(self, job_ids: list[int]) -> int:
        """Remove the log folders of these jobs (deleted ones); how many there were."""
        if not job_ids:
            return 0
        self._hand_off()  # writes queued for them first: none may bring a folder back after
        removed: int = self._pool.spawn(self._remove_folders, job_ids).get()
        return removed

    # -- writer thread -------------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            with self._lock:
                writes, self._writes = self._writes, []
                if not writes:
                    self._draining = False
                    return
            for write in writes:
                try:
                    self._apply(write)
                except OSError as exc:
                    log.error("task %d: cannot write its log: %s", write.task_id, exc)

    def _apply(self, write: Write) -> None:
        job_id, task_id, data = write.job_id, write.task_id, write.data
        if write.marker is not None and self._tail_holds(job_id, task_id, write.marker):
            data = None
        if data is not None:
            handle = self._own_file(job_id, task_id, create=write.output)
            if handle is not None:
                handle.write(data)
            else:
                self._job_file(job_id).write(_prefixed(task_id, data))
        if write.close:
            handle = self._open.pop(task_id, None)
            if handle is not None:
                handle.close()

    def _own_file(self, job_id: int, task_id: int, *, create: bool) -> IO[bytes] | None:
        """The task's own file, opened for appending; None if it has none and not `create`."""
        handle = self._open.get(task_id)
        if handle is not None:
            self._open.move_to_end(task_id)
            return handle
        path = self.path(job_id, task_id)
        if not create and not os.path.exists(path):
            return None
        self._folder(job_id)
        handle = path.open("ab", buffering=0)
        self._open[task_id] = handle
        while len(self._open) > MAX_OPEN_FILES:
            self._open.popitem(last=False)[1].close()
        return handle

    def _job_file(self, job_id: int) -> IO[bytes]:
        handle = self._job_files.get(job_id)
        if handle is not None:
            self._job_files.move_to_end(job_id)
            return handle
        self._folder(job_id)
        handle = self.job_lines_path(job_id).open("ab", buffering=0)
        self._job_files[job_id] = handle
        while len(self._job_files) > MAX_OPEN_JOB_FILES:
            self._job_files.popitem(last=False)[1].close()
        return handle

    def _folder(self, job_id: int) -> None:
        if job_id not in self._folders:
            (self.root / f"job-{job_id}").mkdir(parents=True, exist_ok=True)
            self._folders.add(job_id)

    def _job_lines(self, job_id: int, task_id: int) -> bytes:
        """The master's lines about the task from its job's file, without their prefix."""
        try:
            data = self.job_lines_path(job_id).read_bytes()
        except FileNotFoundError:
            return b""
        prefix = b"%d " % task_id
        if prefix not in data:
            return b""
        cut = len(prefix)
        return b"".join(
            line[cut:] for line in data.splitlines(keepends=True) if line.startswith(prefix)
        )

    def _tail_holds(self, job_id: int, task_id: int, marker: bytes) -> bool:
        try:
            with self.path(job_id, task_id).open("rb") as handle:
                handle.seek(max(0, handle.seek(0, 2) - TAIL_CHECK_BYTES))
                return marker in handle.read()
        except FileNotFoundError:
            return marker in self._job_lines(job_id, task_id)[-TAIL_CHECK_BYTES:]

    def _read(self, task: TaskRecord, offset: int, limit: int) -> dict[str, Any]:
        head = self._job_lines(task.job_id, task.id)
        try:
            with self.path(task.job_id, task.id).open("rb") as handle:
                own_size = handle.seek(0, 2)
                start = max(0, offset - len(head))
                handle.seek(min(start, own_size))
                own = handle.read(limit)
        except FileNotFoundError:
            own_size, own = 0, b""
        size = len(head) + own_size
        data = (head[offset:] + own)[:limit] if offset < len(head) else own
        if offset + len(data) < size:
            data = data[: _utf8_boundary(data)]
        return {
            "text": data.decode("utf-8", "replace"),
            "next_offset": offset + len(data),
            "size": size,
        }

    def _close_all(self) -> None:
        self._drain_now()
        while self._open:
            self._open.popitem()[1].close()
        while self._job_files:
            self._job_files.popitem()[1].close()

    def _drain_now(self) -> None:
        with self._lock:
            pending = bool(self._writes)
            self._draining = self._draining or pending
        if pending:
            self._drain()

    def _remove_folders(self, job_ids: list[int]) -> int:
        removed = 0
        for job_id in job_ids:
            folder = self.root / f"job-{job_id}"
            if folder.exists():
                for task_id, handle in list(self._open.items()):
                    if Path(str(handle.name)).parent == folder:
                        self._open.pop(task_id).close()
                job_file = self._job_files.pop(job_id, None)
                if job_file is not None:
                    job_file.close()
                shutil.rmtree(folder, ignore_errors=True)
                self._folders.discard(job_id)
                removed += 1
        return removed


def _written() -> None:
    """Nothing: queued behind the writer's work, its return says that work is done."""


def _prefixed(task_id: int, data: bytes) -> bytes:
    """The master's line(s) for the job's file: every line starts with the task id."""
    prefix = b"%d " % task_id
    if not data.endswith(b"\n"):
        data += b"\n"
    return b"".join(prefix + line for line in data.splitlines(keepends=True))


def _utf8_boundary(data: bytes) -> int:
    """Length of `data` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: keep looking for the lead byte
            continue
        needed = 4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2 if byte >= 0xC0 else 1
        return len(data) if back >= needed else len(data) - back
    return len(data)
