"""Previews of finished tasks: after a task succeeds, a thumbnail of its newest output file is
made in a thread (Pillow decodes outside the gevent loop, so other tasks' reports keep flowing)
and sent to the master as `task.preview`. Best effort: a preview that cannot be made, is too
large, takes too long or finds the worker disconnected is logged and dropped; the task's result
never waits for it.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import gevent
from gevent.threadpool import ThreadPool

from protocol.errors import RpcError

from .reports import ReportQueue
from .taskorder import TaskOrder
from .thumbnails import MAX_PREVIEW_BYTES, Skipped, Thumbnail, make_thumbnail, newest_output

log = logging.getLogger(__name__)

# One thread: previews are made one at a time; more than this many waiting are dropped.
MAX_WAITING = 4
THUMBNAIL_TIMEOUT_S = 60.0


class PreviewMaker:
    def __init__(self, reports: ReportQueue, max_bytes: int = MAX_PREVIEW_BYTES) -> None:
        self.reports = reports
        self.max_bytes = max_bytes
        self._pool = ThreadPool(1)
        self._waiting = 0
        self.sent = 0  # previews the master accepted (tests and logs)

    def task_succeeded(self, order: TaskOrder, cwd: str | None) -> gevent.Greenlet | None:
        """Make and send the preview of the task's outputs, in the background."""
        if order.outputs is None or cwd is None:
            return None
        if self._waiting >= MAX_WAITING:
            log.warning(
                "attempt %s: no preview: %d previews are already waiting",
                order.attempt,
                self._waiting,
            )
            return None
        self._waiting += 1
        return gevent.spawn(self._make_and_send, order, cwd)

    def _make_and_send(self, order: TaskOrder, cwd: str) -> None:
        made = None
        try:
            with gevent.Timeout(THUMBNAIL_TIMEOUT_S):
                # spawn waits while the one thread is busy: nothing piles up behind it.
                made = self._pool.spawn(_thumbnail_of, cwd, order.outputs or "", self.max_bytes)
                # Counted until the thread is done with it, not until this greenlet gives up:
                # a decode that hangs keeps its place.
                made.rawlink(self._thread_done)
                thumbnail = made.get()
        except Skipped as exc:
            log.info("attempt %s: no preview: %s", order.attempt, exc)
            return
        except gevent.Timeout:
            log.warning(
                "attempt %s: no preview: not made within %g s", order.attempt, THUMBNAIL_TIMEOUT_S
            )
            return
        except Exception:
            log.exception("attempt %s: making the preview failed", order.attempt)
            return
        finally:
            if made is None:
                self._waiting -= 1  # it never reached the thread
        self._send(order, thumbnail)

    def _thread_done(self, _result: object) -> None:
        self._waiting -= 1

    def _send(self, order: TaskOrder, thumbnail: Thumbnail) -> None:
        link = self.reports.link
        if link is None:
            log.info("attempt %s: preview dropped: not connected", order.attempt)
            return
        params: dict[str, Any] = {
            "task_id": order.task_id,
            "frame": order.frame_end,
            "content_type": thumbnail.content_type,
            "width": thumbnail.width,
            "height": thumbnail.height,
            "data": base64.b64encode(thumbnail.data).decode("ascii"),
        }

        def answered(result: Any, error: RpcError | None) -> None:
            if error is None:
                self.sent += 1
                log.info(
                    "attempt %s: preview of %s sent (%dx%d, %d bytes)",
                    order.attempt,
                    thumbnail.path,
                    thumbnail.width,
                    thumbnail.height,
                    len(thumbnail.data),
                )
            else:
                log.warning("attempt %s: preview refused: %s", order.attempt, error.message)

        try:
            link.call_async("task.preview", params, answered)
        except Exception as exc:  # the link closed under us
            log.info("attempt %s: preview dropped: %s", order.attempt, exc)


def _thumbnail_of(cwd: str, pattern: str, max_bytes: int) -> Thumbnail:
    """In the thread: the newest matching file's thumbnail (Skipped when none can be made)."""
    path = newest_output(cwd, pattern)
    if path is None:
        raise Skipped(f"no file matches {pattern!r} in {cwd}")
    return make_thumbnail(path, max_bytes)
