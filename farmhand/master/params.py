"""Reading and checking JSON-RPC params: each accessor raises a clear -32602 naming the field."""

from __future__ import annotations

import math
from typing import Any

from protocol.errors import invalid_params

_MISSING: Any = object()


class Params:
    """`p = Params("clients.enable", params); p.text("select"); p.finish()`.

    `finish()` refuses parameters the method does not know, so a typo is an error, not a no-op.
    """

    def __init__(self, method: str, params: dict[str, Any]) -> None:
        self.method = method
        self._params = params
        self._seen: set[str] = set()

    def _get(self, name: str, default: Any) -> Any:
        self._seen.add(name)
        value = self._params.get(name, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                raise invalid_params(f"{self.method}: missing parameter '{name}'", "missing_param")
            return default
        return value

    def _wrong(self, name: str, expected: str, value: Any) -> Exception:
        return invalid_params(
            f"{self.method}: parameter '{name}' must be {expected}, not {_describe(value)}",
            "bad_param",
        )

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        """The value as sent, unchecked (the caller checks it)."""
        return self._get(name, default)

    def text(self, name: str, default: Any = _MISSING, max_length: int = 10_000) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        if len(value) > max_length:
            raise invalid_params(
                f"{self.method}: parameter '{name}' is longer than {max_length} characters",
                "param_too_long",
            )
        return value

    def integer(
        self,
        name: str,
        default: Any = _MISSING,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(name, "an integer", value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "…" if minimum is None else minimum
            high = "…" if maximum is None else maximum
            bounds = f"{low} to {high}"
            raise invalid_params(
                f"{self.method}: parameter '{name}' must be in {bounds}, not {value}",
                "out_of_range",
            )
        return value

    def number(
        self,
        name: str,
        default: Any = _MISSING,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._wrong(name, "a number", value)
        if isinstance(value, float) and not math.isfinite(value):  # the console can say inf
            raise self._wrong(name, "a finite number", value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise invalid_params(
                f"{self.method}: parameter '{name}' must be between {minimum} and {maximum}, "
                f"not {value}",
                "out_of_range",
            )
        return float(value)

    def integer_list(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list) or not all(
            isinstance(item, int) and not isinstance(item, bool) for item in value
        ):
            raise self._wrong(name, "a list of integers", value)
        return value

    def boolean(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false", value)
        return value

    def text_list(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(name, "a list of strings", value)
        return value

    def mapping(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, dict):
            raise self._wrong(name, "an object", value)
        return value

    def finish(self) -> None:
        unknown = sorted(set(self._params) - self._seen)
        if unknown:
            raise invalid_params(
                f"{self.method}: unknown parameter{'s' if len(unknown) > 1 else ''} "
                + ", ".join(repr(name) for name in unknown),
                "unknown_param",
            )


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
