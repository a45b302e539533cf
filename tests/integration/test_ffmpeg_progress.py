"""ffmpeg's progress through a real worker: the `ffmpeg` template's job over frames 101-148 (one
task) reads ffmpeg's `frame=  N` lines as frames done from the task's first frame, so the task
reaches 100% while it still runs (a frame number would have read as 0%).

Skipped only when ffmpeg is missing and CI is unset (make sysdeps installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.fakeworker import wait_job
from tests.support import MasterProcess, Program, RpcClient

if not shutil.which("ffmpeg") and not os.environ.get("CI"):
    pytest.skip("ffmpeg is not installed (make sysdeps)", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)


def test_ffmpeg_frame_lines_move_the_task_over_its_range(
    tmp_path: Path, master: MasterProcess, worker: Program, api: RpcClient
) -> None:
    # At once: a connection that stays silent at first is taken for a console (dialect_wait_s).
    api.call("subscribe", topics=["tasks"])
    frames = tmp_path / "frames"
    frames.mkdir()
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc=size=64x48:rate=24", "-frames:v", "48", "-start_number", "101",
         str(frames / "f_%04d.png")],
        check=True, timeout=60,
    )  # fmt: skip
    job_id = api.call(
        "jobs.submit",
        name="movie",
        template="ffmpeg",
        input=str(frames / "f_####.png"),
        output=str(tmp_path / "movie.mp4"),
        frames="101-148",
        chunk=48,
        args=["-stats_period", "0.05"],  # a status line every 50 ms, not every 500
    )["job_id"]
    view = api.call("jobs.get", job_id=job_id)
    assert view["argv"][view["argv"].index("-start_number") + 1] == "{start}"
    done = wait_job(api, job_id, "completed", timeout=60)
    assert done["progress"] == 100.0 and (tmp_path / "movie.mp4").stat().st_size > 0
    running = []
    while True:
        event = api.wait_event(lambda e: e["topic"] == "tasks", timeout=5)["data"]
        if event["status"] == "completed":
            break
        if event["status"] == "running":
            running.append(event["progress"])
    # ffmpeg's last status line, `frame=   48`, is 48 of the task's 48 frames: 100% before
    # the task ended (its completion sets 100% too, but with status completed).
    assert running and running[-1] == 100.0, running
