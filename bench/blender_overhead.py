"""Bench: what the farm adds to a Blender render, per task.

    python bench/blender_overhead.py [--frames 8] [--rounds 1]

Makes a tiny Cycles scene (CPU, 1 sample, 64x48), then renders the same frames twice, one
Blender process per frame each time:
1. directly: `blender -b scene.blend -o OUT -F PNG -s N -e N -a -- --cycles-device CPU`, one
   frame after the other, as a shell loop would;
2. through the farm: a real master and one real worker (one slot), a `blender` template job of
   the same frames with chunk 1 (the worker runs the same argv), from the submit until
   `farm.wait` sees the job completed.
Prints seconds per frame for both and the difference: the farm's overhead per task (dispatch,
process start through the worker, log streaming, progress, storing the result). On a shared
machine Blender's own start-up varies by seconds between runs, so the overhead is also measured
within the farm run: its wall time per task minus the time the worker measured for the Blender
process of each task (the task's `duration_s`; one slot, so tasks run one after the other).
Figures, not pass/fail; needs blender on PATH.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farmhand.client import Client  # noqa: E402
from tests.support import MasterProcess, Program  # noqa: E402

SCENE = """
import bpy, sys
s = bpy.context.scene
s.render.engine = "CYCLES"; s.cycles.samples = 1; s.cycles.device = "CPU"
s.cycles.use_denoising = False
s.render.resolution_x = 64; s.render.resolution_y = 48; s.render.resolution_percentage = 100
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""


def direct(scene: Path, out: Path, frames: int) -> float:
    start = time.monotonic()
    for frame in range(1, frames + 1):
        subprocess.run(
            ["blender", "-b", str(scene), "-o", str(out / "f_####"), "-F", "PNG",
             "-s", str(frame), "-e", str(frame), "-a", "--", "--cycles-device", "CPU"],
            check=True, capture_output=True,
        )  # fmt: skip
    return time.monotonic() - start


def farm(scene: Path, out: Path, frames: int, work: Path) -> tuple[float, float]:
    """Wall seconds from submit to completed, and the sum of the tasks' own durations."""
    master = MasterProcess(work / "var")
    worker = Program(
        "worker.py",
        *("--master", master.address, "--name", "bench", "--work-dir", str(work / "w")),
        log_path=work / "worker.log",
    )
    try:
        with Client(master.address) as client:
            client.call("ping")
            while not client.clients("online role=worker"):
                time.sleep(0.05)
            start = time.monotonic()
            job_id = client.submit(
                "bench", template="blender", file=str(scene), frames=f"1-{frames}",
                output=str(out / "f_####"), device="CPU",
            )  # fmt: skip
            view = client.wait(job_id, poll_s=0.2)
            elapsed = time.monotonic() - start
            assert view["status"] == "completed", view
            busy = sum(task["duration_s"] for task in client.tasks(job_id))
    finally:
        worker.stop()
        master.stop()
    return elapsed, busy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fh-blender-bench-") as tmp:
        base = Path(tmp)
        scene = base / "scene.blend"
        subprocess.run(
            ["blender", "-b", "--factory-startup", "--python-expr", SCENE, "--", str(scene)],
            check=True, capture_output=True,
        )  # fmt: skip
        results = []
        for index in range(args.rounds):
            plain = direct(scene, base / f"direct{index}", args.frames) / args.frames
            elapsed, busy = farm(scene, base / f"farm{index}", args.frames, base / f"run{index}")
            results.append((plain, elapsed / args.frames, (elapsed - busy) / args.frames))
    print(
        f"{'round':>5}  {'direct s/frame':>14}  {'farm s/frame':>12}  {'farm - direct':>13}  "
        f"{'in-run overhead s/task':>22}"
    )
    for index, (plain, farmed, inside) in enumerate(results):
        print(
            f"{index:>5}  {plain:>14.2f}  {farmed:>12.2f}  {farmed - plain:>13.2f}  {inside:>22.3f}"
        )
    plain = sum(r[0] for r in results) / len(results)
    farmed = sum(r[1] for r in results) / len(results)
    inside = sum(r[2] for r in results) / len(results)
    summary = {
        "frames": args.frames,
        "direct_s_per_frame": round(plain, 3),
        "farm_s_per_frame": round(farmed, 3),
        "farm_minus_direct_s": round(farmed - plain, 3),
        "in_run_overhead_s_per_task": round(inside, 3),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
