"""The selector grammar (docs/protocol.md, Selectors), shared by the console and the JSON-RPC API.

`parse_selector("render-0* role=worker idle")` gives a `Selector`; `matches(client)` asks
whether a client is selected. Filters must all hold; bare words are name globs, any may match.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from protocol.errors import ErrorCode, ProtocolError


class SelectorError(ProtocolError):
    """A selector that cannot be parsed; the message names the bad term."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message, "bad_selector")


class Selectable(Protocol):
    """What a selector looks at. Properties, so plain attributes and slots satisfy it too."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def online(self) -> bool: ...
    @property
    def status(self) -> str: ...  # "offline" | "idle" | "busy"
    @property
    def tags(self) -> Sequence[str]: ...


Check = Callable[[Selectable], bool]

_KEYWORDS: dict[str, Check] = {
    "all": lambda c: True,
    "enabled": lambda c: c.enabled,
    "disabled": lambda c: not c.enabled,
    "online": lambda c: c.online,
    "offline": lambda c: not c.online,
    "idle": lambda c: c.status == "idle",
    "busy": lambda c: c.status == "busy",
}
_FILTERS = ("role", "tag", "host")


def _compile_glob(pattern: str, term: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(fnmatch.translate(pattern), flags)
    except re.error as exc:
        raise SelectorError(f"invalid glob in {term!r}: {exc}") from None


def _filter_check(term: str) -> Check:
    key, _, value = term.partition("=")
    key = key.lower()
    if key not in _FILTERS:
        raise SelectorError(f"unknown filter {key!r} (known: {', '.join(_FILTERS)})")
    if not value:
        raise SelectorError(f"empty value in {term!r}")
    if key == "role":
        return lambda c: c.role == value
    if key == "tag":
        return lambda c: value in c.tags
    host = _compile_glob(value, term, re.IGNORECASE)
    return lambda c: host.match(c.host) is not None


@dataclass(frozen=True)
class Selector:
    """A parsed selector. Build it with `parse_selector` (or `Selector(text)`, which parses)."""

    text: str
    _checks: tuple[Check, ...] = field(default=(), init=False, repr=False, compare=False)
    _names: tuple[re.Pattern[str], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checks: list[Check] = []
        names: list[re.Pattern[str]] = []
        for term in self.text.split():
            keyword = _KEYWORDS.get(term.lower())
            if keyword is not None:
                checks.append(keyword)
            elif "=" in term:
                checks.append(_filter_check(term))
            else:
                names.append(_compile_glob(term, term))  # names are case-sensitive
        # frozen dataclass: the parsed form is derived from `text`, set once here.
        object.__setattr__(self, "_checks", tuple(checks))
        object.__setattr__(self, "_names", tuple(names))

    @property
    def is_empty(self) -> bool:
        """An empty selector selects nothing (so `disable ""` cannot disable everyone)."""
        return not self.text.strip()

    def matches(self, client: Selectable) -> bool:
        if self.is_empty:
            return False
        if not all(check(client) for check in self._checks):
            return False
        return not self._names or any(glob.match(client.name) for glob in self._names)


def parse_selector(text: str | None) -> Selector:
    """Parse a selector; None or blank gives the empty selector. Bad terms: `SelectorError`."""
    return Selector(text or "")
