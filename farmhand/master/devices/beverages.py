"""What a keg holds: named keg sizes, a volume written with its unit, and the SRM colour.

The named sizes are Kegbot Server's (pykeg/core/keg_sizes.py): US barrels are 31 US gallons,
so a half barrel is 15.5 gal = 58,673.9 ml; a corny keg is 5 gal; the European kegs are metric.
A size can also be a volume: `19.5 L`, `19500 ml`, or a bare number of millilitres.

SRM (Standard Reference Method) is beer colour; `srm_colour` maps it to the sRGB colour the
dashboard's swatch shows, from the common SRM-to-RGB chart (1 pale straw … 30+ black).
"""

from __future__ import annotations

import re

from protocol.errors import invalid_params

US_GALLON_ML = 3785.411784
KEG_SIZES_ML: dict[str, float] = {
    "corny": round(5 * US_GALLON_ML, 1),  # 18,927.1
    "sixth": round(5.17 * US_GALLON_ML, 1),  # 1/6 barrel, as Kegbot rounds it: 19,570.6
    "quarter": round(7.75 * US_GALLON_ML, 1),  # 29,336.9
    "half": round(15.5 * US_GALLON_ML, 1),  # 58,673.9
    "euro-30": 30_000.0,
    "euro-50": 50_000.0,
}
MAX_KEG_ML = 10_000_000.0
MAX_IMAGE_CHARS = 256 * 1024
_VOLUME = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ml|l)?\s*$", re.IGNORECASE | re.ASCII)

# sRGB of SRM 1..30 (beyond 30 the beer is black: the last entry).
SRM_RGB = (
    "#f3f993", "#f5f75c", "#f6f513", "#eae615", "#e0d01b", "#d5bc26", "#cdaa37", "#c1963c",
    "#be8c3a", "#be823a", "#c17a37", "#bf7138", "#bc6733", "#b26033", "#a85839", "#985336",
    "#8d4c32", "#7c452d", "#6b3a1e", "#5d341a", "#4e2a0c", "#4a2727", "#361f1b", "#261716",
    "#231716", "#19100f", "#16100f", "#120d0c", "#100b0a", "#050b0a",
)  # fmt: skip


def keg_size(text: str) -> tuple[str, float]:
    """(the size's name or "", its volume in ml) for a named size or a volume with its unit."""
    name = text.strip().lower()
    if name in KEG_SIZES_ML:
        return name, KEG_SIZES_ML[name]
    match = _VOLUME.match(text)
    if match is None:
        raise invalid_params(
            f"size {text!r}: expected one of {', '.join(KEG_SIZES_ML)} or a volume "
            "such as 19.5 L or 19500 ml",
            "bad_size",
        )
    volume = float(match.group(1)) * (1000.0 if (match.group(2) or "").lower() == "l" else 1.0)
    if not 1.0 <= volume <= MAX_KEG_ML:
        raise invalid_params(f"size {text!r}: a keg holds 1 ml to 10,000 L", "bad_size")
    return "", volume


def srm_colour(srm: float | None) -> str | None:
    """The sRGB hex colour of a beer of `srm` (None: unknown)."""
    if srm is None:
        return None
    return SRM_RGB[min(max(round(srm), 1), len(SRM_RGB)) - 1]


def check_image(image: str | None) -> str | None:
    """An http(s) URL or a data:image/… URI, at most 256 KiB; None for none."""
    if image is None or image == "":
        return None
    if len(image) > MAX_IMAGE_CHARS:
        raise invalid_params("image: at most 256 KiB (a URL or a data: URI)", "bad_image")
    if not image.startswith(("http://", "https://", "data:image/")):
        raise invalid_params("image: expected an http(s) URL or a data:image/… URI", "bad_image")
    return image
