"""Follow a growing log file like `tail -F`, across rotation and truncation, and remember where
we are (device and inode, byte offset) in a state file so that a restart neither skips nor
repeats lines.

Theory of operation: `poll()` reads what was appended since the last call and returns the
complete lines (a partial last line waits for its newline). Only at the end of the file does it
look for changes: the path naming another inode means the file was rotated, so the old file is
read to its end, its unfinished last line is delivered as it is, and reading moves to the new
file at offset 0; a file shorter than what was read means it was truncated in place, so
reading restarts at 0. `commit()` saves the position after the last returned line; callers
commit only once those lines are delivered. At start the saved inode is looked for at the path,
then among the path's siblings (rotated while we were down), whose rest is read first.
No clock and no gevent: the caller decides how often to poll.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
# A "line" this long without a newline is delivered cut (the master takes up to 64 KiB).
MAX_LINE_BYTES = 64 * 1024 - 1


@dataclass(frozen=True)
class TailPosition:
    dev: int
    inode: int
    offset: int


class TailFollower:
    def __init__(self, path: Path, state_file: Path | None) -> None:
        self.path = path
        self.state_file = state_file
        self._file: BinaryIO | None = None
        self._ident: tuple[int, int] = (0, 0)  # (dev, inode) of the open file
        self._read_offset = 0  # bytes of the open file read so far
        self._buf = bytearray()  # read, not yet a complete line
        self._rotated_away = False  # the open file is an old one found by inode at start
        self._saved: TailPosition | None = None
        self._started = False

    @property
    def position(self) -> TailPosition | None:
        """Where the next undelivered line starts (what commit() would save)."""
        if self._file is None:
            return None
        return TailPosition(*self._ident, self._read_offset - len(self._buf))

    def poll(self) -> list[str]:
        """The complete lines appended since the last poll (maybe none)."""
        if not self._started:
            self._started = True
            self._resume()
        if self._file is None and not self._open_path(0):
            return []
        lines = self._read_lines()
        if lines:
            return lines
        return self._at_end()

    def commit(self) -> None:
        """Save the position after the lines returned so far (atomically; no-op if unchanged)."""
        position = self.position
        if position is None or position == self._saved or self.state_file is None:
            return
        record = {"path": str(self.path), **asdict(position)}
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w") as out:
            json.dump(record, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.state_file)
        self._saved = position

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- opening -------------------------------------------------------------------------------
    def _resume(self) -> None:
        saved = self._load_state()
        if saved is None:
            log.info("tail %s: no saved position; reading from the start", self.path)
            return
        self._saved = saved
        wanted = (saved.dev, saved.inode)
        if _ident(self.path) == wanted:
            self._open(self.path, saved.offset)
            return
        for sibling in _siblings(self.path):
            if _ident(sibling) == wanted:
                log.info(
                    "tail %s: rotated to %s while stopped; reading its rest first",
                    self.path,
                    sibling,
                )
                self._open(sibling, saved.offset)
                self._rotated_away = True
                return
        log.warning(
            "tail %s: the file at the saved position is gone; reading the current one from 0",
            self.path,
        )

    def _load_state(self) -> TailPosition | None:
        if self.state_file is None:
            return None
        try:
            record = json.loads(self.state_file.read_text())
            return TailPosition(int(record["dev"]), int(record["inode"]), int(record["offset"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("tail %s: unreadable state file %s: %s", self.path, self.state_file, exc)
            return None

    def _open_path(self, offset: int) -> bool:
        try:
            self._open(self.path, offset)
        except FileNotFoundError:
            return False
        return True

    def _open(self, path: Path, offset: int) -> None:
        handle = path.open("rb", buffering=0)
        stat = os.fstat(handle.fileno())
        if offset > stat.st_size:
            log.warning(
                "tail %s: saved offset %d is past the end (%d): truncated; from 0",
                path,
                offset,
                stat.st_size,
            )
            offset = 0
        handle.seek(offset)
        self.close()
        self._file = handle
        self._ident = (stat.st_dev, stat.st_ino)
        self._read_offset = offset
        self._buf.clear()
        log.info("tail %s: following inode %d from offset %d", path, stat.st_ino, offset)

    # -- reading -------------------------------------------------------------------------------
    def _read_lines(self) -> list[str]:
        assert self._file is not None
        data = self._file.read(READ_CHUNK)
        if not data:
            return []
        self._read_offset += len(data)
        self._buf += data
        end = self._buf.rfind(b"\n")
        lines: list[bytes] = []
        if end >= 0:
            lines = bytes(self._buf[:end]).split(b"\n")
            del self._buf[: end + 1]
        while len(self._buf) > MAX_LINE_BYTES:
            lines.append(bytes(self._buf[:MAX_LINE_BYTES]))
            del self._buf[:MAX_LINE_BYTES]
        return [_text(line) for line in lines]

    def _at_end(self) -> list[str]:
        """At the end of the open file: follow a rotation or a truncation."""
        assert self._file is not None
        current = _ident(self.path)
        if self._rotated_away or (current is not None and current != self._ident):
            lines = self._read_lines()  # what the writer added before it let go
            if lines:
                return lines
            if current is None:
                return []  # renamed, the new file not created yet: keep the old one
            tail = [_text(bytes(self._buf))] if self._buf else []
            old_inode = self._ident[1]
            if not self._open_path(0):
                return []  # gone again between stat and open: try again at the next poll
            log.info("tail %s: rotated (inode %d → %d)", self.path, old_inode, self._ident[1])
            self._rotated_away = False
            return tail
        size = os.fstat(self._file.fileno()).st_size
        if size < self._read_offset:
            log.info(
                "tail %s: truncated (%d < %d bytes read); from 0",
                self.path,
                size,
                self._read_offset,
            )
            self._open(self.path, 0)
        return []


def _ident(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _siblings(path: Path) -> list[Path]:
    """The other files in `path`'s folder, where a rotated log goes (app.log.1, app.1.log…)."""
    try:
        return sorted(entry for entry in path.parent.iterdir() if entry != path and entry.is_file())
    except OSError:
        return []


def _text(line: bytes) -> str:
    return line.rstrip(b"\r").decode("utf-8", errors="replace")
