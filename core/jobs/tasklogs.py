"""Task logs: plain files under DATA_DIR/logs/job-<id>/task-<id>.log, not in the database.

Each attempt starts with a header line; output is appended as it arrives and streamed to
`log:<task_id>` subscribers. Reads go by byte offset and never split a UTF-8 character.
Old jobs' logs are removed after the retention period by `prune(now)`.
"""

from __future__ import annotations

import logging
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

from models.jobstore import TaskRecord
from protocol.times import iso_utc

from ..events import EventBus

log = logging.getLogger(__name__)

MAX_OPEN_FILES = 256
DEFAULT_READ_BYTES = 64 * 1024
MAX_READ_BYTES = 1 << 20


class TaskLogs:
    def __init__(self, root: Path, events: EventBus) -> None:
        self.root = root
        self.events = events
        self._open: OrderedDict[int, IO[bytes]] = OrderedDict()

    def path(self, job_id: int, task_id: int) -> Path:
        return self.root / f"job-{job_id}" / f"task-{task_id}.log"

    def _file(self, task: TaskRecord) -> IO[bytes]:
        handle = self._open.get(task.id)
        if handle is not None:
            self._open.move_to_end(task.id)
            return handle
        path = self.path(task.job_id, task.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab", buffering=0)
        self._open[task.id] = handle
        while len(self._open) > MAX_OPEN_FILES:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return handle

    def begin_attempt(self, task: TaskRecord, attempt: str, worker: str, now: float) -> None:
        self.append(task, f"--- farmhand: attempt {attempt} on {worker} at {iso_utc(now)} ---\n")

    def append(self, task: TaskRecord, text: str) -> None:
        try:
            self._file(task).write(text.encode("utf-8", "replace"))
        except OSError as exc:
            log.error("task %d: cannot write its log: %s", task.id, exc)
        topic = f"log:{task.id}"
        if self.events.has_subscribers(topic):
            self.events.publish(topic, {"task_id": task.id, "text": text})

    def close(self, task_id: int) -> None:
        handle = self._open.pop(task_id, None)
        if handle is not None:
            handle.close()

    def close_all(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def read(self, task: TaskRecord, offset: int, limit: int | None) -> dict[str, Any]:
        limit = min(limit or DEFAULT_READ_BYTES, MAX_READ_BYTES)
        path = self.path(task.job_id, task.id)
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(min(offset, size))
                data = handle.read(limit)
        except FileNotFoundError:
            size, data = 0, b""
        end_of_file = offset + len(data) >= size
        if not end_of_file:
            data = data[: _utf8_boundary(data)]
        return {
            "text": data.decode("utf-8", "replace"),
            "next_offset": offset + len(data),
            "size": size,
        }

    def prune(self, finished_before: dict[int, float], retention_s: float, now: float) -> int:
        """Remove the log folders of jobs (id → finish time) finished before now - retention."""
        removed = 0
        for job_id, finished in finished_before.items():
            if finished < now - retention_s:
                folder = self.root / f"job-{job_id}"
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
        if removed:
            log.info("removed the task logs of %d old jobs", removed)
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
