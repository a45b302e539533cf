"""farmhand.client's template helpers against a real master and worker: templates(),
submit(template=…), follow_log(); and studio templates from the master's --templates folder
(contrib/templates/python-script.toml, run for real), with a bad folder refused at start."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from farmhand.client import Client, RpcError
from tests.support import ROOT, MasterProcess, Program

pytestmark = pytest.mark.timeout(120)

EXAMPLE = ROOT / "contrib" / "templates" / "python-script.toml"
SCRIPT = """
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--start", type=int); parser.add_argument("--end", type=int)
parser.add_argument("--tag")
args = parser.parse_args()
for frame in range(args.start, args.end + 1):
    pathlib.Path("out").mkdir(exist_ok=True)
    pathlib.Path(f"out/{args.tag}_{frame}.png").write_text("x")
    print(f"Fra:{frame}", flush=True)
"""


def start_worker(tmp_path: Path, master: MasterProcess) -> Program:
    return Program(
        "worker.py",
        *("--master", master.address, "--name", "w1", "--work-dir", str(tmp_path / "work")),
        *("--allow-cwd", str(tmp_path)),
        log_path=tmp_path / "worker.log",
    )


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[MasterProcess]:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "python-script.toml").write_text(EXAMPLE.read_text())
    process = MasterProcess(tmp_path / "var", "--templates", str(folder))
    yield process
    process.stop()


def test_templates_lists_the_builtins_with_their_params(master: MasterProcess) -> None:
    with Client(master.address) as farm:
        templates = {t["name"]: t for t in farm.templates()}
    assert {"command", "blender", "ffmpeg"} <= set(templates)
    blender = {p["name"]: p for p in templates["blender"]["params"]}
    assert blender["file"]["required"] and blender["format"]["default"] == "PNG"
    assert "CPU" in blender["device"]["choices"]
    with Client(master.address) as farm, pytest.raises(RpcError) as refused:
        farm.submit("x", template="blender", frames="1-2")
    assert refused.value.reason == "missing_param" and "'file'" in refused.value.message


def test_a_studio_template_from_the_folder_runs_and_its_log_is_followed(
    tmp_path: Path, studio: MasterProcess
) -> None:
    script = tmp_path / "bake.py"
    script.write_text(SCRIPT)
    worker = start_worker(tmp_path, studio)
    try:
        with Client(studio.address) as farm:
            listed = {t["name"]: t for t in farm.templates()}
            assert listed["python-script"]["source"].endswith("python-script.toml")
            job_id = farm.submit(
                "bake",
                template="python-script",
                frames="1-4",
                chunk=2,
                script=str(script),
                python=sys.executable,
                args=["--tag", "b"],
                cwd=str(tmp_path),
            )
            view = farm.job(job_id)
            assert view["outputs"] == "out/*.png"
            first = farm.tasks(job_id)[0]["id"]
            text = "".join(farm.follow_log(first))
            assert "Fra:1" in text and "Fra:2" in text and "ended: exit code 0" in text
            assert farm.wait(job_id, timeout=60)["status"] == "completed"
    finally:
        worker.stop()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"b_{n}.png" for n in range(1, 5)
    ]


def test_a_bad_studio_template_stops_the_master_at_start_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "broken.toml").write_text('name = "broken"\nargv = ["run", "{nope}"]\n')
    started = subprocess.run(
        [sys.executable, "master.py", "--port", "0", "--data-dir", str(tmp_path / "var"),
         "--templates", str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert started.returncode == 2
    assert "broken.toml" in started.stderr and "{nope}" in started.stderr
