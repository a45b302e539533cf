"""Frame specs and argv placeholders: "1-10,20,30-40" → frame runs → tasks of `chunk` frames,
and `{frame}`-style placeholders expanded per task (or at their longest, for size checks).
Pure functions; errors are RpcErrors.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from .errors import invalid_params

PLACEHOLDERS = ("frame", "start", "end", "frames", "task", "job")
FRAME_PLACEHOLDERS = ("frame", "start", "end", "frames")
MAX_FRAME = 10**9
# Job and task ids are 64-bit: no id is longer than this.
MAX_ID = 2**63 - 1
MIN_FRAME = -MAX_FRAME  # Blender allows negative frames
# A stepped range ("1-100x5") is split into one run per frame: this many frames at most.
MAX_STEPPED_FRAMES = 1_000_000
# One part of a spec: N, N-M or N-MxS, where N and M may be negative ("-10--1"). ASCII digits
# only (str.isdigit() also takes "¹", which int() refuses), and no more of them than MAX_FRAME
# has, so int() never meets a 5,000-digit number.
_PART = re.compile(r"(-?[0-9]{1,10})(?:-(-?[0-9]{1,10})(?:x([0-9]{1,10}))?)?")

Chunk = tuple[int, int]


def parse_frames(spec: str) -> list[Chunk]:
    """ "1-10,20,30-40" → [(1, 10), (20, 20), (30, 40)]: sorted, overlaps and neighbours merged.

    A step takes every S-th frame of a range ("1-9x4" → 1, 5, 9), each as a run of its own (a
    task never spans a gap); frames may be negative ("-10--1", "-5-5").
    """
    runs: list[Chunk] = []
    stepped = 0
    for part in spec.replace(" ", "").split(","):
        if not part:
            raise invalid_params(f"bad frame spec {spec!r}: empty part", "bad_frames")
        match = _PART.fullmatch(part)
        if match is None:
            raise invalid_params(
                f"bad frame spec {spec!r}: {part!r} is not N, N-M or N-MxSTEP "
                "(e.g. 1-250, -10--1, 1-100x5)",
                "bad_frames",
            )
        first, last, step_text = match.groups()
        start, end = int(first), int(last) if last is not None else int(first)
        if end < start:
            raise invalid_params(f"bad frame spec {spec!r}: {part!r} runs backwards", "bad_frames")
        if end > MAX_FRAME or start < MIN_FRAME:
            raise invalid_params(
                f"bad frame spec {spec!r}: frames go from {MIN_FRAME} to {MAX_FRAME}",
                "bad_frames",
            )
        step = int(step_text) if step_text is not None else 1
        if step < 1:
            raise invalid_params(
                f"bad frame spec {spec!r}: the step of {part!r} must be at least 1", "bad_frames"
            )
        if step == 1:
            runs.append((start, end))
            continue
        stepped += (end - start) // step + 1
        if stepped > MAX_STEPPED_FRAMES:
            raise invalid_params(
                f"bad frame spec {spec!r}: stepped ranges give more than {MAX_STEPPED_FRAMES} "
                "frames",
                "bad_frames",
            )
        runs.extend((frame, frame) for frame in range(start, end + 1, step))
    runs.sort()
    merged: list[Chunk] = [runs[0]]
    for start, end in runs[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end + 1:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def count_chunks(runs: Sequence[Chunk], chunk: int) -> int:
    return sum(-(-(end - start + 1) // chunk) for start, end in runs)


def split_chunks(runs: Sequence[Chunk], chunk: int) -> list[Chunk]:
    """Runs cut into tasks of at most `chunk` consecutive frames; a task never spans a gap."""
    if chunk < 1:
        raise invalid_params(f"chunk must be at least 1, not {chunk}", "bad_chunk")
    return [
        (first, min(first + chunk - 1, end))
        for start, end in runs
        for first in range(start, end + 1, chunk)
    ]


def format_chunk(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def check_argv(argv: object, has_frames: bool) -> list[str]:
    """Validates argv: a non-empty list of strings whose placeholders are all known."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise invalid_params("argv must be a non-empty list of strings", "bad_argv")
    if not argv[0]:
        raise invalid_params("argv[0] (the program) is empty", "bad_argv")
    for index, arg in enumerate(argv):
        if "\0" in arg:
            # exec takes C strings: a NUL would cut the argument short (Python refuses it).
            raise invalid_params(
                f"argv[{index}] contains a NUL byte, which no program can be given", "bad_argv"
            )
        for name in _placeholders(arg):
            if name not in PLACEHOLDERS:
                raise invalid_params(
                    f"unknown placeholder {{{name}}} in {arg!r}: known are "
                    + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                    + " (write {{ and }} for literal braces)",
                    "bad_placeholder",
                )
            if name in FRAME_PLACEHOLDERS and not has_frames:
                raise invalid_params(
                    f"{arg!r} uses {{{name}}} but the job has no frames", "bad_placeholder"
                )
    return argv


def expand_argv(
    argv: Sequence[str], *, job: int, task: int, start: int | None, end: int | None
) -> list[str]:
    """Placeholders filled in for one task. argv must have passed check_argv."""
    values: dict[str, object] = {"job": job, "task": task}
    if start is not None and end is not None:
        values.update(frame=start, start=start, end=end, frames=f"{start}-{end}")
    return [arg.format_map(values) if "{" in arg or "}" in arg else arg for arg in argv]


def expand_argv_longest(argv: Sequence[str], runs: Sequence[Chunk], tasks: int) -> list[str]:
    """argv with every placeholder at the longest value any task of the job can give it: an
    upper bound of each task's expanded argv, for size checks. argv must have passed check_argv.
    """
    values: dict[str, object] = {"job": MAX_ID, "task": max(tasks - 1, 0)}
    if runs:
        # The lowest or the highest frame has the most characters (a minus sign counts);
        # "start-end" is longest when both are it.
        last = max((runs[0][0], max(end for _, end in runs)), key=lambda f: len(str(f)))
        values.update(frame=last, start=last, end=last, frames=f"{last}-{last}")
    return [arg.format_map(values) if "{" in arg or "}" in arg else arg for arg in argv]


def _placeholders(arg: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(arg))
    except ValueError as exc:
        raise invalid_params(
            f"bad braces in {arg!r}: {exc} (write {{{{ for a literal {{)", "bad_placeholder"
        ) from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not name:
            raise invalid_params(
                f"placeholder in {arg!r} must be a plain {{name}}", "bad_placeholder"
            )
        names.append(name)
    return names
