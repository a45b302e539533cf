"""Builds the Blender add-on's zip (contrib/blender/farmhand_submit plus a vendored copy of
farmhand.client and the modules it imports, all standard library): `make blender-addon`.

    python scripts/build_blender_addon.py [OUT.zip]   (default dist/farmhand_blender.zip)
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "contrib" / "blender" / "farmhand_submit"


def client_modules() -> list[str]:
    """The files `import farmhand.client` loads from this checkout, found by importing it in a
    clean interpreter (-I -S: no site-packages), so the list cannot go stale."""
    probe = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import farmhand.client\n"
        "for m in sorted(sys.modules.values(), key=lambda m: m.__name__):\n"
        "    f = getattr(m, '__file__', None) or ''\n"
        f"    if f.startswith({str(ROOT)!r}): print(f)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return out.split()


def build(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(ADDON.rglob("*.py")):
            archive.write(path, f"farmhand_submit/{path.relative_to(ADDON)}")
        for file in client_modules():
            relative = Path(file).relative_to(ROOT)
            archive.write(file, f"farmhand_submit/vendor/{relative}")
        archive.write(ROOT / "LICENSE", "farmhand_submit/LICENSE")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist" / "farmhand_blender.zip"
    print(build(target))
