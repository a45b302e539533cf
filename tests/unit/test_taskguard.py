"""The task guard's parts on real processes: a group's identity (leader start time), the lines
the worker sends, SIGTERM then SIGKILL of whole groups after the grace, and the worker's journal
of its groups (which starts a real guard process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from farmhand.worker.taskgroups import JOURNAL_COMPACT_BYTES, TaskGroups, read_journal
from farmhand.worker.taskguard import (
    GroupRecord,
    format_add,
    format_remove,
    is_ours,
    kill_groups,
    live_members,
    parse_line,
    start_time,
)

pytestmark = pytest.mark.timeout(20)

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print(1, flush=True); time.sleep(60)"
)


def group(*argv: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE)
    return proc


def test_identity_is_pid_and_start_time() -> None:
    proc = group("sleep", "60")
    try:
        start = start_time(proc.pid)
        assert start is not None and start > 0
        assert is_ours(GroupRecord(proc.pid, start))
        assert not is_ours(GroupRecord(proc.pid, start + 1))  # a recycled pid
        assert not is_ours(GroupRecord(proc.pid, None))  # unknown start: cannot tell
    finally:
        proc.kill()
        proc.wait()
    assert start_time(proc.pid) is None
    assert is_ours(GroupRecord(proc.pid, 1))  # the leader is gone: nothing to confuse it with


def test_lines_add_and_remove_groups_and_bad_lines_are_ignored() -> None:
    held: dict[int, GroupRecord] = {}
    lines = [b"+ 10 500 1.1.a\n", b"+ 11 - 2.1.b\n", b"- 10\n", b"+ x 1\n", b"junk\n", b"- 9\n"]
    for line in lines:
        parse_line(line, held)
    assert held == {11: GroupRecord(11, None)}
    assert format_add(GroupRecord(11, None), "2.1.b") == lines[1]
    assert format_add(GroupRecord(10, 500), "1.1.a") == lines[0]
    assert format_remove(10) == lines[2]


def test_kill_groups_terms_then_kills_after_the_grace() -> None:
    polite = group("sleep", "60")
    stubborn = group(sys.executable, "-c", STUBBORN)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"1\n"
    records = [GroupRecord(p.pid, start_time(p.pid)) for p in (polite, stubborn)]
    assert kill_groups(records, grace_s=0.3) == [polite.pid, stubborn.pid]
    assert polite.wait(5) == -15 and stubborn.wait(5) == -9
    assert not live_members(polite.pid) and not live_members(stubborn.pid)
    assert kill_groups(records, grace_s=0.3) == []  # nothing left: nothing signalled


def test_the_journal_replays_the_live_groups_and_stays_small(tmp_path: Path) -> None:
    groups = TaskGroups(tmp_path, "w/1")  # a name that is no file name is made one
    groups.start()
    try:
        for pgid in range(100_000, 120_000):  # no such processes: ids only
            groups.add(pgid, f"{pgid}.1.abc")
            if pgid % 1000:
                groups.remove(pgid)
        live = sorted(r.pgid for r in read_journal(groups.state_path))
        assert live == list(range(100_000, 120_000, 1000))
        assert groups.state_path.name == ".farmhand-w_1.tasks"
        assert groups.state_path.stat().st_size < JOURNAL_COMPACT_BYTES + 100
    finally:
        for pgid in range(100_000, 120_000, 1000):
            groups.remove(pgid)
        groups.close()
    assert not groups.state_path.exists()
