"""The previews of jobs: thumbnails workers send after a task succeeds (`task.preview`), kept in
the data dir as `previews/<job_id>/<seq>_t<task>_f<frame>_<w>x<h>.<jpg|png>` (all that is known
of one is in its file name, so a restart finds them again by listing the folder).

The newest few per task are kept (the newest of all is the job's preview, `jobs.preview`).
Files are written, read and removed in the hub's thread pool, never in the hub; a preview is
in the index (and answered OK) only once its file is written. `forget(job_id)` removes a job's
previews (called when a job is deleted). Each stored preview is published on the `previews`
topic as `{job_id, task_id, frame, content_type, width, height, version}`.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from gevent.event import AsyncResult

from protocol.errors import ErrorCode, RpcError, invalid_params, not_found

from ..events import EventBus

log = logging.getLogger(__name__)

PREVIEW_TOPIC = "previews"
KEPT_PER_TASK = 3
MAX_PREVIEW_BYTES = 512 * 1024  # of image data (before base64)
MAX_SIDE_PX = 640
CONTENT_TYPES = {"image/jpeg": ("jpg", b"\xff\xd8\xff"), "image/png": ("png", b"\x89PNG\r\n\x1a\n")}
EXTENSIONS = {ext: content_type for content_type, (ext, _) in CONTENT_TYPES.items()}
_NAME = re.compile(r"^(\d+)_t(\d+)_f(-?\d+|x)_(\d+)x(\d+)\.(jpg|png)$")


@dataclass(frozen=True, slots=True)
class Preview:
    job_id: int
    task_id: int
    frame: int | None
    content_type: str
    width: int
    height: int
    version: int  # increases with every stored preview, across restarts

    @property
    def file_name(self) -> str:
        ext = CONTENT_TYPES[self.content_type][0]
        frame = "x" if self.frame is None else str(self.frame)
        return f"{self.version}_t{self.task_id}_f{frame}_{self.width}x{self.height}.{ext}"

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "task_id": self.task_id,
            "frame": self.frame,
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "version": self.version,
        }


def decode_preview(content_type: str, width: int, height: int, data: str) -> bytes:
    """The image bytes of a `task.preview`, checked (-32602 / -32013 with a clear message)."""
    if content_type not in CONTENT_TYPES:
        raise invalid_params(
            f"task.preview: content_type must be one of {', '.join(CONTENT_TYPES)}",
            "bad_content_type",
        )
    if not (0 < width <= MAX_SIDE_PX and 0 < height <= MAX_SIDE_PX):
        raise invalid_params(
            f"task.preview: width and height must be 1-{MAX_SIDE_PX} px, not {width}x{height}",
            "bad_size",
        )
    if len(data) > (MAX_PREVIEW_BYTES + 2) // 3 * 4:
        raise RpcError(
            ErrorCode.TOO_LARGE,
            f"task.preview: the image is more than {MAX_PREVIEW_BYTES} bytes "
            f"({len(data)} base64 characters); send a smaller thumbnail",
            "preview_too_large",
            {"limit": MAX_PREVIEW_BYTES},
        )
    try:
        image = base64.b64decode(data, validate=True)
    except ValueError:
        raise invalid_params("task.preview: data is not base64", "bad_data") from None
    if not image.startswith(CONTENT_TYPES[content_type][1]):
        raise invalid_params(
            f"task.preview: data is not {content_type} data (its first bytes differ)", "bad_data"
        )
    return image


class PreviewStore:
    def __init__(self, root: Path, events: EventBus) -> None:
        self.root = root
        self.events = events
        self._by_job: dict[int, list[Preview]] = {}  # oldest first
        self._newest: dict[int, Preview] = {}
        self._version = 0
        # Jobs forgotten while a write of theirs may still land (ids only: small, never pruned).
        self._gone: set[int] = set()

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> None:
        """Index the previews on disk (at start, before serving)."""
        found = 0
        if self.root.is_dir():
            for folder in os.scandir(self.root):
                if not (folder.is_dir() and folder.name.isdigit()):
                    continue
                job_id = int(folder.name)
                for entry in os.scandir(folder.path):
                    preview = _parse(job_id, entry.name)
                    if preview is None:
                        continue  # a temporary file of an interrupted write, or a stranger
                    self._index(preview)
                    found += 1
        for previews in self._by_job.values():
            previews.sort(key=lambda p: p.version)
        log.info("%d previews of %d jobs loaded from %s", found, len(self._by_job), self.root)

    # -- verbs -----------------------------------------------------------------------------------
    def add(
        self,
        job_id: int,
        task_id: int,
        frame: int | None,
        content_type: str,
        width: int,
        height: int,
        image: bytes,
    ) -> AsyncResult:
        """Store a checked preview; the result is set (to {}) once its file is written."""
        self._version += 1
        preview = Preview(job_id, task_id, frame, content_type, width, height, self._version)
        self._gone.discard(job_id)
        done = AsyncResult()

        def written(result: AsyncResult) -> None:
            error = result.exception
            if error is not None:
                log.error("job %d: preview of task %d not stored: %s", job_id, task_id, error)
                done.set_exception(RpcError(ErrorCode.INTERNAL_ERROR, "the preview was not stored"))
                return
            if job_id in self._gone:
                self._spawn(_remove_files, [self._path(preview)])
                done.set({})
                return
            self._store(preview)
            done.set({})

        self._spawn(_write_file, self._path(preview), image).rawlink(written)
        return done

    def newest(self, job_id: int) -> Preview:
        """The job's preview; -32004 while it has none."""
        preview = self._newest.get(job_id)
        if preview is None:
            raise not_found(f"job {job_id} has no preview yet", "no_preview")
        return preview

    def read(self, job_id: int) -> AsyncResult:
        """`jobs.preview`'s answer: the newest preview's view with `data` (base64)."""
        preview = self.newest(job_id)
        done = AsyncResult()

        def loaded(result: AsyncResult) -> None:
            if result.exception is not None:
                done.set_exception(not_found(f"job {job_id}'s preview is gone", "no_preview"))
                return
            view = preview.view()
            del view["job_id"], view["version"]
            done.set({**view, "data": base64.b64encode(result.value).decode("ascii")})

        self._spawn(_read_file, self._path(preview)).rawlink(loaded)
        return done

    def forget(self, job_id: int) -> None:
        """Drop the job's previews (its folder is removed in the thread pool)."""
        self._by_job.pop(job_id, None)
        self._newest.pop(job_id, None)
        self._gone.add(job_id)
        self._spawn(shutil.rmtree, self.root / str(job_id), True)  # ignore_errors
        log.info("job %d: previews forgotten", job_id)

    def newest_of(self, job_ids: list[int] | None, limit: int) -> list[Preview]:
        """The newest preview of each of `job_ids` (None: of every job), newest first."""
        if job_ids is None:
            chosen = list(self._newest.values())
        else:
            chosen = [p for job_id in job_ids if (p := self._newest.get(job_id)) is not None]
        chosen.sort(key=lambda p: p.version, reverse=True)
        return chosen[:limit]

    # -- inside ----------------------------------------------------------------------------------
    @staticmethod
    def _spawn(fn: Callable[..., Any], *args: Any) -> AsyncResult:
        """Run file I/O in the hub's thread pool; the result is set back in the hub."""
        result: AsyncResult = gevent.get_hub().threadpool.spawn(fn, *args)
        return result

    def _path(self, preview: Preview) -> Path:
        return self.root / str(preview.job_id) / preview.file_name

    def _index(self, preview: Preview) -> None:
        self._by_job.setdefault(preview.job_id, []).append(preview)
        newest = self._newest.get(preview.job_id)
        if newest is None or preview.version > newest.version:
            self._newest[preview.job_id] = preview
        self._version = max(self._version, preview.version)

    def _store(self, preview: Preview) -> None:
        self._index(preview)
        previews = self._by_job[preview.job_id]
        previews.sort(key=lambda p: p.version)
        same_task = [p for p in previews if p.task_id == preview.task_id]
        doomed = same_task[:-KEPT_PER_TASK]
        if doomed:
            self._by_job[preview.job_id] = [p for p in previews if p not in doomed]
            self._spawn(_remove_files, [self._path(p) for p in doomed])
        log.info(
            "job %d task %d: preview %d stored (%dx%d %s)",
            preview.job_id,
            preview.task_id,
            preview.version,
            preview.width,
            preview.height,
            preview.content_type,
        )
        if self.events.has_subscribers(PREVIEW_TOPIC):
            self.events.publish(PREVIEW_TOPIC, preview.view())


def _parse(job_id: int, name: str) -> Preview | None:
    match = _NAME.match(name)
    if match is None:
        return None
    version, task, frame, width, height, ext = match.groups()
    return Preview(
        job_id,
        int(task),
        None if frame == "x" else int(frame),
        EXTENSIONS[ext],
        int(width),
        int(height),
        int(version),
    )


def _write_file(path: Path, data: bytes) -> None:
    """In a thread: written whole or not at all (a crash leaves only a .tmp, ignored)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _read_file(path: Path) -> bytes:
    return path.read_bytes()


def _remove_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
