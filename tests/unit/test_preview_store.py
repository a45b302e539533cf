"""The master's preview store: checked input, a few kept per task, the newest per job, files
found again after a restart, forget removes them, and each stored one is published."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from farmhand.master.events import EventBus
from farmhand.master.jobs.previews import MAX_PREVIEW_BYTES, PreviewStore, decode_preview
from protocol.errors import ErrorCode, RpcError
from tests.support import wait_for

pytestmark = pytest.mark.timeout(20)

JPEG = b"\xff\xd8\xff\xe0" + b"jpeg body"
PNG = b"\x89PNG\r\n\x1a\n" + b"png body"


class _Recorder:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_bytes(self, data: bytes) -> None:
        self.frames.append(data)


def _store(root: Path) -> tuple[PreviewStore, _Recorder]:
    events = EventBus()
    recorder = _Recorder()
    events.subscribe(recorder, ["previews"])
    store = PreviewStore(root, events)
    store.load()
    return store, recorder


def _add(store: PreviewStore, job: int, task: int, frame: int | None, data: bytes = JPEG) -> Any:
    kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return store.add(job, task, frame, kind, 64, 36, data).get(timeout=5)


def test_the_newest_preview_is_the_jobs_and_survives_a_restart(tmp_path: Path) -> None:
    store, recorder = _store(tmp_path)
    with pytest.raises(RpcError) as missing:
        store.newest(1)
    assert missing.value.code == ErrorCode.NOT_FOUND
    assert _add(store, 1, 10, 1) == {}
    assert _add(store, 1, 11, 2, PNG) == {}
    answer = store.read(1).get(timeout=5)
    assert answer == {
        "task_id": 11,
        "frame": 2,
        "content_type": "image/png",
        "width": 64,
        "height": 36,
        "data": base64.b64encode(PNG).decode(),
    }
    assert len(recorder.frames) == 2 and b'"topic":"previews"' in recorder.frames[-1]
    again, _ = _store(tmp_path)
    assert again.read(1).get(timeout=5) == answer
    # Versions go on increasing after a restart, so browsers never see an old URL reused.
    _add(again, 1, 10, None)
    assert again.newest(1).version > store.newest(1).version
    assert again.read(1).get(timeout=5)["frame"] is None


def test_a_few_previews_are_kept_per_task(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    for frame in range(1, 7):
        _add(store, 2, 20, frame)
    _add(store, 2, 21, 9)

    def files() -> list[str]:
        return sorted(path.name for path in (tmp_path / "2").iterdir())

    wait_for(lambda: len(files()) == 4, 5, what="old previews removed")
    assert [name.split("_")[2] for name in files()] == ["f4", "f5", "f6", "f9"]
    assert store.newest(2).frame == 9


def test_forget_removes_a_jobs_previews(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    _add(store, 3, 30, 1)
    _add(store, 4, 40, 1)
    store.forget(3)
    with pytest.raises(RpcError):
        store.newest(3)
    wait_for(lambda: not (tmp_path / "3").exists(), 5, what="the folder removed")
    assert (tmp_path / "4").is_dir()
    assert [p.job_id for p in store.newest_of(None, 10)] == [4]
    again, _ = _store(tmp_path)
    assert [p.job_id for p in again.newest_of([3, 4], 10)] == [4]


def test_a_half_written_file_is_ignored_at_load(tmp_path: Path) -> None:
    (tmp_path / "5").mkdir(parents=True)
    (tmp_path / "5" / "7_t50_f1_64x36.jpg.tmp").write_bytes(JPEG[:3])
    (tmp_path / "5" / "README").write_text("a stranger")
    store, _ = _store(tmp_path)
    assert store.newest_of(None, 10) == []


def test_bad_previews_are_refused_with_a_clear_error() -> None:
    good = base64.b64encode(JPEG).decode()
    assert decode_preview("image/jpeg", 640, 360, good) == JPEG
    cases = [
        (("image/gif", 10, 10, good), ErrorCode.INVALID_PARAMS, "content_type must be one of"),
        (("image/jpeg", 641, 10, good), ErrorCode.INVALID_PARAMS, "1-640 px, not 641x10"),
        (("image/jpeg", 10, 10, "%%%"), ErrorCode.INVALID_PARAMS, "not base64"),
        (("image/png", 10, 10, good), ErrorCode.INVALID_PARAMS, "data is not image/png data"),
    ]
    for args, code, message in cases:
        with pytest.raises(RpcError) as refused:
            decode_preview(*args)
        assert refused.value.code == code and message in refused.value.message
    huge = base64.b64encode(JPEG + bytes(MAX_PREVIEW_BYTES)).decode()
    with pytest.raises(RpcError) as too_large:
        decode_preview("image/jpeg", 10, 10, huge)
    assert too_large.value.code == ErrorCode.TOO_LARGE
    assert f"more than {MAX_PREVIEW_BYTES} bytes" in too_large.value.message
