"""Where the `farmhand` command finds its master, key and CA: a flag, else the environment
(FARMHAND_MASTER, FARMHAND_KEY, FARMHAND_CA), else the user's config file, else the default.

The config file is TOML in the user's config dir, `$XDG_CONFIG_HOME/farmhand/config.toml`
(`~/.config/farmhand/config.toml`), or the file `--config` / FARMHAND_CONFIG names:

    master = "tls://farm.example:6443"
    key = "fhk_…"
    ca = "~/farm-ca.pem"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farmhand.options import DEFAULT_MASTER

KEYS = ("master", "key", "ca")


class SettingsError(ValueError):
    """The config file cannot be used (one line, naming the file)."""


@dataclass(frozen=True)
class Settings:
    master: str = DEFAULT_MASTER
    key: str | None = None
    ca: str | None = None


def config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or expand_home("~/.config", environ)
    return Path(base) / "farmhand" / "config.toml"


def expand_home(text: str, environ: Mapping[str, str]) -> str:
    """`~/x` under the HOME of `environ` (not necessarily this process's)."""
    home = environ.get("HOME")
    if home and (text == "~" or text.startswith("~/")):
        return home + text[1:]
    return str(Path(text).expanduser())


def read_config(path: Path, required: bool, environ: Mapping[str, str]) -> dict[str, str]:
    try:
        with path.open("rb") as handle:
            document: dict[str, Any] = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise SettingsError(f"config file {path} does not exist") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"config file {path}: {exc}") from None
    unknown = sorted(set(document) - set(KEYS))
    if unknown:
        raise SettingsError(
            f"config file {path}: unknown setting {unknown[0]!r} (known: {', '.join(KEYS)})"
        )
    for name, value in document.items():
        if not isinstance(value, str):
            raise SettingsError(f"config file {path}: {name} must be a string, not {value!r}")
    if "ca" in document:
        document["ca"] = expand_home(document["ca"], environ)
    return document


def resolve(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> Settings:
    """Flags first, then FARMHAND_* variables, then the config file."""
    explicit = flags.get("config") or environ.get("FARMHAND_CONFIG")
    path = Path(expand_home(explicit, environ)) if explicit else config_path(environ)
    found = read_config(path, bool(explicit), environ)
    chosen: dict[str, str | None] = {}
    for name in KEYS:
        chosen[name] = flags.get(name) or environ.get(f"FARMHAND_{name.upper()}") or found.get(name)
    return Settings(chosen["master"] or DEFAULT_MASTER, chosen["key"], chosen["ca"])
