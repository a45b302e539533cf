"""Thumbnails of a task's output: the newest file matching its `outputs` glob, shrunk with Pillow
to at most 640 px wide (and tall) as JPEG, or PNG when the frame has transparency.

Pillow reads PNG, JPEG, TIFF and more, but has no OpenEXR reader: an EXR frame (or anything else
it cannot open, or a file too large to decode safely) raises `Skipped` with the reason, which
the worker logs; a task never fails for its preview. Pure functions, run in a worker thread.
"""

from __future__ import annotations

import glob
import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MAX_WIDTH_PX = 640
MAX_HEIGHT_PX = 640
# What the master accepts in one `task.preview` (its data, before base64).
MAX_PREVIEW_BYTES = 512 * 1024
# Bounds on what is decoded, so a huge or hostile file cannot take the worker's memory or time.
MAX_SOURCE_BYTES = 1 << 30
MAX_SOURCE_PIXELS = 120_000_000  # e.g. 12,000 x 10,000
# Files looked at per glob: a pattern matching a whole disk must not stall the thread.
MAX_CANDIDATES = 100_000
JPEG_QUALITIES = (80, 60, 40)


class Skipped(Exception):
    """No thumbnail was made; the message says why (logged by the worker)."""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    path: str
    content_type: str  # image/jpeg or image/png
    width: int
    height: int
    data: bytes


def newest_output(cwd: str, pattern: str) -> Path | None:
    """The most recently modified regular file matching `pattern` (relative to `cwd`, or
    absolute), or None when nothing matches."""
    root = None if os.path.isabs(pattern) else cwd
    newest: tuple[float, str] | None = None
    for count, name in enumerate(glob.iglob(pattern, root_dir=root, recursive=True)):
        if count >= MAX_CANDIDATES:
            break
        path = name if root is None else os.path.join(root, name)
        try:
            stat = os.stat(path)
        except OSError:
            continue  # removed meanwhile
        if not os.path.isfile(path):
            continue
        if newest is None or stat.st_mtime > newest[0]:
            newest = (stat.st_mtime, path)
    return None if newest is None else Path(newest[1])


def make_thumbnail(path: Path, max_bytes: int = MAX_PREVIEW_BYTES) -> Thumbnail:
    """A thumbnail of the image at `path`; Skipped (with the reason) when there can be none."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise Skipped(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_SOURCE_BYTES:
        raise Skipped(f"{path} is {size} bytes, more than the {MAX_SOURCE_BYTES} read for previews")
    try:
        with Image.open(path) as image:
            return _shrink(image, path, max_bytes)
    except UnidentifiedImageError:
        hint = " (Pillow has no OpenEXR reader)" if path.suffix.lower() == ".exr" else ""
        raise Skipped(f"Pillow cannot read {path}{hint}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise Skipped(f"cannot decode {path}: {exc}") from None


def _shrink(image: Image.Image, path: Path, max_bytes: int) -> Thumbnail:
    if image.width * image.height > MAX_SOURCE_PIXELS:
        raise Skipped(
            f"{path} is {image.width}x{image.height}, more than {MAX_SOURCE_PIXELS} pixels"
        )
    image.draft("RGB", (MAX_WIDTH_PX, MAX_HEIGHT_PX))  # JPEG: decode at a reduced scale
    frame = _eight_bit(image)
    frame.thumbnail((MAX_WIDTH_PX, MAX_HEIGHT_PX))
    transparent = frame.mode in ("RGBA", "LA")
    for quality in (None,) if transparent else JPEG_QUALITIES:
        out = io.BytesIO()
        if quality is None:
            frame.save(out, "PNG", optimize=True)
        else:
            frame.save(out, "JPEG", quality=quality)
        data = out.getvalue()
        if len(data) <= max_bytes:
            content_type = "image/png" if quality is None else "image/jpeg"
            return Thumbnail(str(path), content_type, frame.width, frame.height, data)
    raise Skipped(f"the thumbnail of {path} is {len(data)} bytes, more than {max_bytes}")


def _eight_bit(image: Image.Image) -> Image.Image:
    """The frame as 8-bit RGB, RGBA, L or LA (16-bit and float frames scaled to their range)."""
    if image.mode in ("RGB", "L", "RGBA", "LA"):
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        wide = image.convert("F")
        extrema = wide.getextrema()
        assert isinstance(extrema[0], float) and isinstance(extrema[1], float)  # one band
        low, high = extrema[0], extrema[1]
        span = high - low or 1.0
        return wide.point(lambda v: (v - low) * 255.0 / span).convert("L")
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")
