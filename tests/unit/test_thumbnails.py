"""Thumbnails made by the worker with real Pillow from real image files written here: PNG,
JPEG, 16-bit and transparent frames, the newest of a glob; EXR (Pillow cannot read it) and
other unreadable files are skipped with the reason logged, never failing the task."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import gevent
import pytest
from PIL import Image

from farmhand.worker.previews import PreviewMaker
from farmhand.worker.reports import ReportQueue
from farmhand.worker.taskorder import TaskOrder
from farmhand.worker.thumbnails import Skipped, make_thumbnail, newest_output

pytestmark = pytest.mark.timeout(30)


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_full_hd_png_becomes_a_640_px_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "0001.png"
    Image.new("RGB", (1920, 1080), (10, 200, 30)).save(path)
    thumb = make_thumbnail(path)
    assert (thumb.content_type, thumb.width, thumb.height) == ("image/jpeg", 640, 360)
    image = _decoded(thumb.data)
    assert image.format == "JPEG" and image.size == (640, 360)
    red, green, blue = image.getpixel((10, 10))  # type: ignore[misc]
    assert green > 150 and red < 60 and blue < 80


def test_a_large_jpeg_is_shrunk_and_a_small_one_kept_at_its_size(tmp_path: Path) -> None:
    big, small = tmp_path / "big.jpg", tmp_path / "small.jpg"
    Image.new("RGB", (4000, 3000), (90, 90, 250)).save(big, quality=90)
    Image.new("RGB", (200, 100), (90, 90, 250)).save(small)
    assert (make_thumbnail(big).width, make_thumbnail(big).height) == (640, 480)
    thumb = make_thumbnail(small)
    assert (thumb.width, thumb.height) == (200, 100) and thumb.content_type == "image/jpeg"


def test_a_tall_frame_is_bounded_by_640_px_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "tall.png"
    Image.new("RGB", (1000, 4000)).save(path)
    thumb = make_thumbnail(path)
    assert (thumb.width, thumb.height) == (160, 640)


def test_a_transparent_frame_stays_a_png_with_alpha(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (1280, 720), (255, 0, 0, 100)).save(path)
    thumb = make_thumbnail(path)
    assert thumb.content_type == "image/png" and thumb.width == 640
    image = _decoded(thumb.data)
    assert image.mode == "RGBA" and image.getpixel((5, 5))[3] == 100  # type: ignore[index]


def test_a_16_bit_frame_is_scaled_to_8_bits(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    deep = Image.new("I;16", (800, 400), 0)
    deep.paste(60000, (400, 0, 800, 400))
    deep.save(path)
    image = _decoded(make_thumbnail(path).data)
    assert image.size == (640, 320)
    assert image.getpixel((10, 10)) < 20 and image.getpixel((600, 10)) > 235  # type: ignore[operator]


def test_the_newest_matching_file_is_chosen(tmp_path: Path) -> None:
    (tmp_path / "render").mkdir()
    for index, age in ((1, 30), (2, 10), (3, 20)):
        path = tmp_path / "render" / f"{index:04d}.png"
        Image.new("RGB", (8, 8)).save(path)
        os.utime(path, (1_000_000 - age, 1_000_000 - age))
    (tmp_path / "render" / "notes.txt").write_text("not a frame")
    assert newest_output(str(tmp_path), "render/*.png") == tmp_path / "render" / "0002.png"
    assert newest_output(str(tmp_path), "nothing/*.png") is None
    absolute = str(tmp_path / "render" / "000[13].png")
    assert newest_output("/", absolute) == tmp_path / "render" / "0003.png"


def test_an_unreadable_file_is_skipped_with_the_reason(tmp_path: Path) -> None:
    fake = tmp_path / "0001.exr"
    fake.write_bytes(b"v/1\x01" + bytes(200))  # the OpenEXR magic, then nothing sensible
    with pytest.raises(Skipped, match="Pillow has no OpenEXR reader"):
        make_thumbnail(fake)
    broken = tmp_path / "cut.png"
    Image.new("RGB", (500, 500)).save(broken)
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(Skipped, match=r"cut\.png"):
        make_thumbnail(broken)
    with pytest.raises(Skipped, match="cannot read"):
        make_thumbnail(tmp_path / "missing.png")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg writes the real EXR frame")
def test_a_real_exr_frame_is_skipped_because_pillow_cannot_read_it(tmp_path: Path) -> None:
    path = tmp_path / "0001.exr"
    source = ["-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1"]
    subprocess.run(
        ["ffmpeg", "-v", "error", *source, "-c:v", "exr", "-pix_fmt", "gbrpf32le", str(path)],
        check=True,
        timeout=20,
    )
    assert path.read_bytes()[:4] == b"v/1\x01"  # a genuine OpenEXR file
    with pytest.raises(Skipped, match="Pillow has no OpenEXR reader"):
        make_thumbnail(path)


def test_too_large_a_thumbnail_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    Image.effect_noise((640, 640), 120).convert("RGB").save(path)
    with pytest.raises(Skipped, match="more than 1000"):
        make_thumbnail(path, max_bytes=1000)


class _Link:
    """Stands in for the master link: records task.preview calls and answers them."""

    closed = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call_async(self, method: str, params: dict[str, Any], on_reply: Any) -> None:
        self.calls.append((method, params))
        on_reply({}, None)


def _maker_with_link() -> tuple[PreviewMaker, _Link]:
    reports = ReportQueue()
    link = _Link()
    reports._link = link  # type: ignore[assignment]  # connected, without a socket
    return PreviewMaker(reports), link


def _order(outputs: str) -> TaskOrder:
    return TaskOrder("7.1.abc", 7, 3, ["true"], {}, frame_start=5, frame_end=5, outputs=outputs)


def test_the_preview_of_a_succeeded_task_is_made_in_a_thread_and_sent(tmp_path: Path) -> None:
    Image.new("RGB", (1280, 720), (200, 0, 0)).save(tmp_path / "0005.png")
    maker, link = _maker_with_link()
    greenlet = maker.task_succeeded(_order("*.png"), str(tmp_path))
    assert greenlet is not None
    greenlet.join(10)
    [(method, params)] = link.calls
    assert method == "task.preview"
    assert {k: params[k] for k in ("task_id", "frame", "content_type", "width", "height")} == {
        "task_id": 7,
        "frame": 5,
        "content_type": "image/jpeg",
        "width": 640,
        "height": 360,
    }
    assert maker.sent == 1


def test_an_exr_output_is_skipped_with_a_logged_reason_and_nothing_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "0005.exr").write_bytes(b"v/1\x01" + bytes(64))
    maker, link = _maker_with_link()
    with caplog.at_level(logging.INFO, logger="farmhand.worker.previews"):
        greenlet = maker.task_succeeded(_order("*.exr"), str(tmp_path))
        assert greenlet is not None
        greenlet.join(10)
    assert link.calls == []
    assert "attempt 7.1.abc: no preview: Pillow cannot read" in caplog.text
    assert "OpenEXR" in caplog.text


def test_no_outputs_means_no_preview(tmp_path: Path) -> None:
    maker, link = _maker_with_link()
    order = TaskOrder("7.1.abc", 7, 3, ["true"], {})
    assert maker.task_succeeded(order, str(tmp_path)) is None
    gevent.sleep(0)
    assert link.calls == []


def test_a_hanging_decode_holds_one_place_and_nothing_piles_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gevent import monkey

    from farmhand.worker import previews

    # A real OS-thread event even if something patched threading (the decode runs in a thread).
    release = monkey.get_original("threading", "Event")()

    def hangs(cwd: str, pattern: str, max_bytes: int) -> None:
        release.wait(20)
        raise Skipped("released")

    monkeypatch.setattr(previews, "_thumbnail_of", hangs)
    monkeypatch.setattr(previews, "THUMBNAIL_TIMEOUT_S", 0.05)
    maker, link = _maker_with_link()
    with caplog.at_level(logging.INFO, logger="farmhand.worker.previews"):
        waiting = [maker.task_succeeded(_order("*.png"), str(tmp_path)) for _ in range(5)]
        assert waiting[-1] is None  # at most MAX_WAITING (4) at once
        assert "4 previews are already waiting" in caplog.text
        for greenlet in waiting[:4]:
            assert greenlet is not None
            greenlet.join(10)
        assert caplog.text.count("not made within") == 4  # each gave up in time…
        # …and only what reached the pool keeps its place (the hung decode, one queued).
        assert maker._waiting == 2
        for _ in range(3):  # more tasks succeed meanwhile: nothing piles up
            later = maker.task_succeeded(_order("*.png"), str(tmp_path))
            assert later is not None
            later.join(10)
        assert maker._waiting == 2
        release.set()
        with gevent.Timeout(10):
            while maker._waiting:
                gevent.sleep(0.01)
    assert link.calls == []
