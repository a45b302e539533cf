"""Task logs: plain files under DATA_DIR/logs/job-<id>/task-<id>.log, not in the database.

Each attempt starts with a header line; output is appended as it arrives and streamed to
`log:<task_id>` subscribers. Reads go by byte offset and never split a UTF-8 character.
Old jobs' logs are removed after the retention period by `prune(now)`.

File work runs in one writer thread: creating a file per task cost the hub ~40% of its time at
full dispatch rate (bench/dispatch.py). The hub only appends to a list; the thread drains it,
and reads go through the same thread, so they see every write made before them.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

from gevent.threadpool import ThreadPool

from models.jobstore import TaskRecord
from protocol.times import iso_utc

from ..events import EventBus

log = logging.getLogger(__name__)

MAX_OPEN_FILES = 256
DEFAULT_READ_BYTES = 64 * 1024
MAX_READ_BYTES = 1 << 20

# (job id, task id, bytes to append or None, close the file afterwards, and a marker: when set,
# the bytes are skipped if the file's tail already holds the marker)
Write = tuple[int, int, bytes | None, bool, bytes | None]
TAIL_CHECK_BYTES = 4096


class TaskLogs:
    def __init__(self, root: Path, events: EventBus) -> None:
        self.root = root
        self.events = events
        self._pool = ThreadPool(1)
        self._lock = threading.Lock()
        self._writes: list[Write] = []
        self._draining = False
        # Owned by the writer thread:
        self._open: OrderedDict[int, IO[bytes]] = OrderedDict()
        self._folders: set[int] = set()

    def path(self, job_id: int, task_id: int) -> Path:
        return self.root / f"job-{job_id}" / f"task-{task_id}.log"

    # -- hub side ------------------------------------------------------------------------------
    def begin_attempt(self, task: TaskRecord, attempt: str, worker: str, now: float) -> None:
        self.append(task, f"--- farmhand: attempt {attempt} on {worker} at {iso_utc(now)} ---\n")

    def append(self, task: TaskRecord, text: str, unless: str | None = None) -> None:
        """Append text; with `unless`, only if the log does not already end with that marker
        (a result re-sent after a master crash must not end the log twice)."""
        marker = unless.encode() if unless is not None else None
        self._enqueue((task.job_id, task.id, text.encode("utf-8", "replace"), False, marker))
        topic = f"log:{task.id}"
        if self.events.has_subscribers(topic):
            self.events.publish(topic, {"task_id": task.id, "text": text})

    def close(self, task: TaskRecord) -> None:
        self._enqueue((task.job_id, task.id, None, True, None))

    def _enqueue(self, write: Write) -> None:
        with self._lock:
            self._writes.append(write)
            if self._draining:
                return
            self._draining = True
        self._pool.spawn(self._drain)

    def read(self, task: TaskRecord, offset: int, limit: int | None) -> dict[str, Any]:
        limit = min(limit or DEFAULT_READ_BYTES, MAX_READ_BYTES)
        result: dict[str, Any] = self._pool.spawn(self._read, task, offset, limit).get()
        return result

    def close_all(self) -> None:
        self._pool.spawn(self._close_all).get()
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
        removed: int = self._pool.spawn(self._remove_folders, job_ids).get() if job_ids else 0
        return removed

    # -- writer thread -------------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            with self._lock:
                writes, self._writes = self._writes, []
                if not writes:
                    self._draining = False
                    return
            for job_id, task_id, data, close, marker in writes:
                try:
                    if marker is not None and self._tail_holds(job_id, task_id, marker):
                        data = None
                    if data is not None:
                        self._file(job_id, task_id).write(data)
                    if close:
                        handle = self._open.pop(task_id, None)
                        if handle is not None:
                            handle.close()
                except OSError as exc:
                    log.error("task %d: cannot write its log: %s", task_id, exc)

    def _file(self, job_id: int, task_id: int) -> IO[bytes]:
        handle = self._open.get(task_id)
        if handle is not None:
            self._open.move_to_end(task_id)
            return handle
        if job_id not in self._folders:
            self.path(job_id, task_id).parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(job_id)
        handle = self.path(job_id, task_id).open("ab", buffering=0)
        self._open[task_id] = handle
        while len(self._open) > MAX_OPEN_FILES:
            self._open.popitem(last=False)[1].close()
        return handle

    def _tail_holds(self, job_id: int, task_id: int, marker: bytes) -> bool:
        try:
            with self.path(job_id, task_id).open("rb") as handle:
                handle.seek(max(0, handle.seek(0, 2) - TAIL_CHECK_BYTES))
                return marker in handle.read()
        except FileNotFoundError:
            return False

    def _read(self, task: TaskRecord, offset: int, limit: int) -> dict[str, Any]:
        try:
            with self.path(task.job_id, task.id).open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(min(offset, size))
                data = handle.read(limit)
        except FileNotFoundError:
            size, data = 0, b""
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
                shutil.rmtree(folder, ignore_errors=True)
                self._folders.discard(job_id)
                removed += 1
        return removed


def _utf8_boundary(data: bytes) -> int:
    """Length of `data` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: keep looking for the lead byte
            continue
        needed = 4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2 if byte >= 0xC0 else 1
        return len(data) if back >= needed else len(data) - back
    return len(data)
