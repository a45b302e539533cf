"""A size-rotated log file for a child's output: `name.log`, `name.log.1` … `name.log.N`.

Same naming and order as logging.handlers.RotatingFileHandler, but for raw bytes that arrive in
chunks from a pipe. Writes are whole lines (the caller splits), so a rotation never cuts a line.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_BACKUPS = 5


class RotatingWriter:
    def __init__(
        self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: BinaryIO | None = None
        self._size = 0

    def configure(self, max_bytes: int, backups: int) -> None:
        self.max_bytes = max_bytes
        self.backups = backups

    def write(self, data: bytes) -> None:
        """Append data; lines that would cross the size limit go to a fresh file."""
        try:
            while data:
                data = self._write_some(data)
            if self._file is not None:
                self._file.flush()
        except OSError as exc:
            # A full disk must not take the supervisor down with it; the agent keeps running.
            log.warning("log %s: write failed: %s", self.path, exc)
            self.close()

    def _write_some(self, data: bytes) -> bytes:
        """Write the whole lines of data that fit (rotating first if none do); return the rest."""
        if self._file is None:
            self._open()
        assert self._file is not None
        if self.max_bytes <= 0 or self._size + len(data) <= self.max_bytes:
            cut = len(data)
        else:
            cut = data.rfind(b"\n", 0, self.max_bytes - self._size) + 1
            if cut == 0 and self._size > 0:
                self._rotate()
                return data
            if cut == 0:
                # One line longer than the limit: alone in its file rather than cut in two.
                cut = data.find(b"\n") + 1 or len(data)
        self._file.write(data[:cut])
        self._size += cut
        if cut < len(data):
            self._rotate()
        return data[cut:]

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self.close()
        if self.backups > 0:
            for index in range(self.backups - 1, 0, -1):
                older = self._backup(index)
                if older.exists():
                    os.replace(older, self._backup(index + 1))
            os.replace(self.path, self._backup(1))
            log.debug("log %s rotated (%d backups kept)", self.path, self.backups)
        else:
            self.path.unlink(missing_ok=True)
        self._open()

    def _backup(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
