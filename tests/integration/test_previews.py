"""Previews over real processes: a real worker runs a real task that writes a PNG frame with
Pillow, makes its thumbnail and sends it; `jobs.preview` returns it, also after a restart."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

from PIL import Image

from tests.integration.fakeworker import FakeWorker, submit
from tests.support import MasterProcess, Program, RpcClient, wait_for

# Writes a 1920x1080 frame named after the frame number, like a renderer would.
WRITE_FRAME = (
    "import os, sys; from PIL import Image; os.makedirs('frames', exist_ok=True); "
    "Image.new('RGB', (1920, 1080), (200, 40, 40)).save('frames/%04d.png' % int(sys.argv[1]))"
)


def _preview(api: RpcClient, job_id: int) -> dict[str, object] | None:
    reply = api.request("jobs.preview", job_id=job_id)
    if "error" in reply:
        assert reply["error"]["code"] == -32004, reply
        return None
    result: dict[str, object] = reply["result"]
    return result


def test_a_real_worker_sends_the_preview_of_its_frame_and_a_restart_keeps_it(
    tmp_path: Path, master: MasterProcess, api: RpcClient, worker: Program
) -> None:
    wait_for(lambda: api.call("clients.list", select="online")["clients"], what="the worker")
    job = api.call(
        "jobs.submit",
        name="frames",
        argv=[sys.executable, "-c", WRITE_FRAME, "{frame}"],
        frames="1-2",
        outputs="frames/*.png",
    )
    wait_for(lambda: api.call("jobs.get", job_id=job["job_id"])["status"] == "completed", 30)
    preview = wait_for(lambda: _preview(api, job["job_id"]), 30, what="the preview")
    assert preview["content_type"] == "image/jpeg"
    assert (preview["width"], preview["height"]) == (640, 360)
    assert preview["frame"] in (1, 2)
    image = Image.open(io.BytesIO(base64.b64decode(str(preview["data"]))))
    assert image.size == (640, 360) and image.format == "JPEG"
    red, green, blue = image.convert("RGB").getpixel((320, 180))  # type: ignore[misc]
    assert red > 150 and green < 90 and blue < 90
    assert "preview of" in worker.log()

    master.stop()
    again = MasterProcess(master.data_dir, "--heartbeat-s", "0.5")
    try:
        with RpcClient(again.port) as rpc:
            kept = _preview(rpc, job["job_id"])
            assert kept is not None
            assert {k: kept[k] for k in ("task_id", "frame", "width", "height", "data")} == {
                k: preview[k] for k in ("task_id", "frame", "width", "height", "data")
            }
            missing = rpc.request("jobs.preview", job_id=job["job_id"] + 1000)
            assert missing["error"]["code"] == -32004
    finally:
        again.stop()


# -- the wire, with a fake worker ------------------------------------------------------------------
def _png(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 120, 255)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_the_order_carries_outputs_and_the_master_checks_each_preview(
    master: MasterProcess, api: RpcClient
) -> None:
    fake = FakeWorker(master.port, "render-01")
    other = FakeWorker(master.port, "render-02", slots=0)
    try:
        job_id = submit(api, "shots", frames="7", outputs="out/{job}/f{frame}_*.png")
        task = fake.take()
        assert task["outputs"] == f"out/{job_id}/f7_*.png"
        assert _preview(api, job_id) is None
        fake.complete(task)
        preview = {"content_type": "image/png", "width": 64, "height": 36, "data": _png(64, 36)}
        refused = other.request("task.preview", task_id=task["task_id"], frame=7, **preview)
        assert refused["error"]["code"] == -32009, refused  # not the worker that ran it
        huge = {**preview, "data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(600_000)).decode()}
        too_large = fake.request("task.preview", task_id=task["task_id"], frame=7, **huge)
        assert too_large["error"]["code"] == -32013
        assert "more than 524288 bytes" in too_large["error"]["message"]
        unknown = fake.request("task.preview", task_id=999_999, frame=7, **preview)
        assert unknown["error"]["code"] == -32004
        api.call("subscribe", topics=["previews"])
        stored = fake.request("task.preview", task_id=task["task_id"], frame=7, **preview)
        assert stored.get("result") == {}, stored
        event = api.wait_event(lambda e: e["topic"] == "previews")["data"]
        assert event["job_id"] == job_id and event["frame"] == 7 and event["version"] >= 1
        answer = api.call("jobs.preview", job_id=job_id)
        assert answer == {"task_id": task["task_id"], "frame": 7, **preview}
        listed = api.call("jobs.previews", job_ids=[job_id, job_id + 1])["previews"]
        assert [p["job_id"] for p in listed] == [job_id]
        # Without outputs the order says so.
        plain = submit(api, "plain")
        assert fake.take()["outputs"] is None
        assert _preview(api, plain) is None
    finally:
        fake.close()
        other.close()
