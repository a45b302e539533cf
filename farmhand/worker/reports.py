"""The worker's outgoing task reports: kept per attempt, in order, until the master has them.

Theory of operation: each attempt has an `Outbox` holding what is not yet delivered, in the
order it must arrive: `task.started`, then output (batched), then the latest progress, and
`task.finished` only once all output is gone. A report is removed only after it was sent, so a
lost connection just pauses the sender; `deliver_over(link)` after each reconnect resumes it.
`task.finished` is a request answered once the master committed it; the sender does not wait
for that answer (one attempt's result never waits on another's commit): calls are pipelined,
each outbox going once its answer comes, and resent on a new link or after no answer.
While connected, a task that outputs faster than the link drains waits (backpressure, nothing is
lost); while disconnected, each attempt keeps at most 1 MiB of output and drops the middle.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event

from farmhand.agent.link import LinkClosed, MasterLink
from protocol.errors import ErrorCode, RpcError

log = logging.getLogger(__name__)

MAX_UNDELIVERED_OUTPUT_BYTES = 1 << 20  # per attempt
OUTPUT_BATCH_BYTES = 64 * 1024
OUTPUT_FLUSH_S = 0.1
FINISHED_RETRY_S = 2.0
IDLE_WAIT_S = 1.0
FINISHED_CALL_TIMEOUT_S = 30.0
SENDER_STOP_S = 5.0


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


class OutputBuffer:
    """Undelivered output of one attempt: `head`, then maybe a gap of `dropped` bytes, `tail`."""

    def __init__(self, limit: int = MAX_UNDELIVERED_OUTPUT_BYTES) -> None:
        self.limit = limit
        self.head: deque[tuple[str, int]] = deque()
        self.tail: deque[tuple[str, int]] = deque()
        self.head_bytes = 0
        self.tail_bytes = 0
        self.dropped = 0
        self.since: float | None = None  # when the oldest undelivered text arrived
        # Whether the text delivered so far ends a line (the marker must start on a new line).
        self._at_line_start = True
        self._at_line_start_before_take = True

    @property
    def pending(self) -> int:
        return self.head_bytes + self.tail_bytes

    def __bool__(self) -> bool:
        return bool(self.head or self.tail or self.dropped)

    def append(self, text: str, now: float, *, may_drop: bool) -> int:
        """Add text; returns how many bytes this call dropped (only if `may_drop`)."""
        size = _size(text)
        if self.since is None:
            self.since = now
        if not self.dropped and (not may_drop or self.pending + size <= self.limit):
            self.head.append((text, size))
            self.head_bytes += size
            return 0
        before = self.dropped
        if not self.dropped:
            # Start the gap: keep the older half as the head, the rest becomes the tail.
            while self.head and self.head_bytes > self.limit // 2:
                moved = self.head.pop()
                self.head_bytes -= moved[1]
                self.tail.appendleft(moved)
                self.tail_bytes += moved[1]
        self.tail.append((text, size))
        self.tail_bytes += size
        room = max(0, self.limit - self.head_bytes)
        while self.tail_bytes > room:
            chunk, chunk_size = self.tail.popleft()
            self.tail_bytes -= chunk_size
            excess = self.tail_bytes + chunk_size - room
            if excess < chunk_size:  # keep the end of this chunk
                kept = chunk.encode("utf-8", "surrogatepass")[excess:].decode("utf-8", "ignore")
                kept_size = _size(kept)
                self.tail.appendleft((kept, kept_size))
                self.tail_bytes += kept_size
                self.dropped += chunk_size - kept_size
            else:
                self.dropped += chunk_size
        return self.dropped - before

    def take(self, max_bytes: int) -> str:
        """Remove and return up to about `max_bytes` from the front (the gap becomes one line)."""
        parts: list[str] = []
        size = 0
        while size < max_bytes:
            if self.head:
                text, chunk_size = self.head[0]
                if parts and size + chunk_size > max_bytes:
                    break
                self.head.popleft()
                self.head_bytes -= chunk_size
                parts.append(text)
                size += chunk_size
            elif self.dropped:
                ends_line = parts[-1].endswith("\n") if parts else self._at_line_start
                parts.append(
                    ("" if ends_line else "\n")
                    + f"[farmhand: {self.dropped} bytes of output dropped"
                    " while the master was unreachable]\n"
                )
                self.dropped = 0
                self.head, self.tail = self.tail, deque()
                self.head_bytes, self.tail_bytes = self.tail_bytes, 0
            else:
                break
        if not self:
            self.since = None
        self._at_line_start_before_take = self._at_line_start
        if parts:
            self._at_line_start = parts[-1].endswith("\n")
        return "".join(parts)

    def put_back(self, text: str, now: float) -> None:
        """Undo a `take` whose send failed: the text goes back to the front."""
        if text:
            self._at_line_start = self._at_line_start_before_take
            size = _size(text)
            self.head.appendleft((text, size))
            self.head_bytes += size
            self.since = now if self.since is None else self.since


class Outbox:
    """What one attempt has not yet delivered."""

    def __init__(self, attempt: str) -> None:
        self.attempt = attempt
        self.started: dict[str, Any] | None = None
        self.output = OutputBuffer()
        self.progress: float | None = None
        self.finished: dict[str, Any] | None = None
        self.retry_at = 0.0
        # The task.finished call awaiting its answer: its number, or 0 when none is out.
        self.finished_call = 0
        self.finished_sent_at = 0.0

    def is_empty(self) -> bool:
        return (
            self.started is None
            and not self.output
            and self.progress is None
            and self.finished is None
        )


class ReportQueue:
    """Per-attempt outboxes plus the sender that drains them over the current link."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._outboxes: dict[str, Outbox] = {}
        self._link: MasterLink | None = None
        self._sender: gevent.Greenlet | None = None
        self._wakeup = Event()
        self._room = Event()
        self._calls = 0  # numbers task.finished calls, so a late answer to an old one is ignored

    # -- producers (task processes) ------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.closed

    @property
    def link(self) -> MasterLink | None:
        """The link reports go over now (None while disconnected); previews use it too."""
        return self._link if self.connected else None

    def attempts(self) -> list[str]:
        """Attempts with undelivered reports."""
        return list(self._outboxes)

    def started(self, attempt: str, pid: int) -> None:
        self._outbox(attempt).started = {"attempt": attempt, "pid": pid}
        self._wakeup.set()

    def output(self, attempt: str, text: str) -> None:
        """Queue output; while connected, waits for room instead of dropping anything."""
        if not text:
            return
        size = _size(text)
        while self.connected and self._lacks_room(attempt, size):
            self._room.clear()
            self._wakeup.set()
            self._room.wait(IDLE_WAIT_S)
        # Looked up after waiting: the sender drops an outbox once it has delivered all of it.
        box = self._outbox(attempt)
        dropped = box.output.append(text, self.clock(), may_drop=not self.connected)
        if dropped and box.output.dropped == dropped:
            log.warning("attempt %s: master unreachable, dropping output beyond 1 MiB", attempt)
        self._wakeup.set()

    def _lacks_room(self, attempt: str, size: int) -> bool:
        box = self._outboxes.get(attempt)
        if box is None or not box.output.pending:
            return False  # a single chunk always fits, however big
        return box.output.pending + size > box.output.limit

    def progress(self, attempt: str, percent: float) -> None:
        self._outbox(attempt).progress = percent
        self._wakeup.set()

    def finished(
        self,
        attempt: str,
        exit_code: int | None,
        error: str | None,
        duration_s: float,
        reason: str | None = None,
    ) -> None:
        """`reason`: why it ended other than by success (exit, signal, timeout, canceled,
        cannot-start), None when it succeeded (then left out: a success reads as before)."""
        report: dict[str, Any] = {
            "attempt": attempt,
            "exit_code": exit_code,
            "error": error,
            "duration_s": round(duration_s, 3),
        }
        if reason is not None:
            report["reason"] = reason
        self._outbox(attempt).finished = report
        self._wakeup.set()

    def _outbox(self, attempt: str) -> Outbox:
        box = self._outboxes.get(attempt)
        if box is None:
            box = self._outboxes[attempt] = Outbox(attempt)
        return box

    # -- the sender ----------------------------------------------------------------------

    def deliver_over(self, link: MasterLink) -> None:
        """Deliver over `link` until it closes; runs in the caller's greenlet."""
        previous = self._sender
        if previous is not None and previous is not gevent.getcurrent():
            # Its link is closed, so it is about to stop; two senders would interleave reports.
            previous.join(timeout=SENDER_STOP_S)
            previous.kill()
        self._sender = gevent.getcurrent()
        self._link = link
        for box in self._outboxes.values():
            box.retry_at = 0.0  # a new connection: retry held-back results at once
            box.finished_call = 0  # an answer on the old link will never come
        log.info(
            "report sender attached: %d attempt(s) with undelivered reports", len(self._outboxes)
        )
        try:
            while not link.closed:
                if not self._send_one(link):
                    self._wait_for_work()
        except LinkClosed:
            log.info("report sender paused: the master is unreachable")
        except Exception:
            # A bug here must not lose reports: they stay queued for the next connection.
            log.exception("report sender failed; reports stay queued")
            link.close()
        finally:
            if self._link is link:
                self._link = None
            self._room.set()  # waiting producers switch to bounded, dropping mode

    def _wait_for_work(self) -> None:
        now = self.clock()
        deadline = now + IDLE_WAIT_S
        for box in self._outboxes.values():
            if box.output.since is not None:
                deadline = min(deadline, box.output.since + OUTPUT_FLUSH_S)
            if box.finished is not None and box.retry_at > now:
                deadline = min(deadline, box.retry_at)
            if box.finished_call:
                deadline = min(deadline, box.finished_sent_at + FINISHED_CALL_TIMEOUT_S)
        self._wakeup.clear()
        self._wakeup.wait(max(0.0, deadline - now))

    def _send_one(self, link: MasterLink) -> bool:
        """Send the next due report of some attempt; False if nothing is due."""
        now = self.clock()
        for attempt, box in list(self._outboxes.items()):
            if self._send_due(link, box, now):
                # Round robin: a chatty attempt must not starve the others.
                if self._outboxes.get(attempt) is box:
                    del self._outboxes[attempt]
                    self._outboxes[attempt] = box
                return True
        return False

    def _send_due(self, link: MasterLink, box: Outbox, now: float) -> bool:
        if box.started is not None:
            link.notify("task.started", box.started)
            box.started = None
            return True
        output = box.output
        if output and (
            output.pending >= OUTPUT_BATCH_BYTES
            or box.finished is not None
            or (output.since is not None and now - output.since >= OUTPUT_FLUSH_S)
        ):
            text = output.take(OUTPUT_BATCH_BYTES)
            try:
                link.notify("task.output", {"attempt": box.attempt, "data": text})
            except BaseException:  # LinkClosed, or this greenlet killed: keep the text
                output.put_back(text, now)
                raise
            self._room.set()
            return True
        if box.progress is not None:
            link.notify("task.progress", {"attempt": box.attempt, "percent": box.progress})
            box.progress = None
            return True
        if box.finished_call and now - box.finished_sent_at >= FINISHED_CALL_TIMEOUT_S:
            log.warning("attempt %s: no answer to task.finished; retrying", box.attempt)
            box.finished_call = 0
        if box.finished is not None and not output and not box.finished_call:
            if box.retry_at <= now:
                self._deliver_finished(link, box, now)
                return True
            return False
        if box.is_empty():
            # Only output was queued and it is all delivered; a running attempt comes back.
            self._outboxes.pop(box.attempt, None)
        return False

    def _deliver_finished(self, link: MasterLink, box: Outbox, now: float) -> None:
        """Send the result; its answer comes to `_finished_answered` (in the link's reader)."""
        self._calls += 1
        call = box.finished_call = self._calls
        box.finished_sent_at = now
        link.call_async(
            "task.finished",
            box.finished,
            lambda result, error: self._finished_answered(box, call, error),
        )

    def _finished_answered(self, box: Outbox, call: int, error: RpcError | None) -> None:
        if box.finished_call != call or box.finished is None:
            return  # an answer to a call given up on (resent since, or a new link)
        box.finished_call = 0
        attempt = box.attempt
        self._wakeup.set()
        if error is None:
            log.info("attempt %s: result delivered %s", attempt, box.finished)
            self._forget(box)
        elif isinstance(error, LinkClosed):
            pass  # resent on the next link
        elif error.code == ErrorCode.CONFLICT:
            log.warning(
                "attempt %s: the master calls it stale (%s); dropping its result %s",
                attempt,
                error.message,
                box.finished,
            )
            self._forget(box)
        else:
            log.warning("attempt %s: task.finished refused (%s); retrying", attempt, error.message)
            box.retry_at = self.clock() + FINISHED_RETRY_S

    def _forget(self, box: Outbox) -> None:
        if self._outboxes.get(box.attempt) is box:
            del self._outboxes[box.attempt]
