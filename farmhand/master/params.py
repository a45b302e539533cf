"""Reading and checking JSON-RPC params: each accessor raises a clear -32602 naming the field.

A method declares its params as a tuple of `Param` (built with `text(…)`, `integer(…)`, …);
`parse_params` reads a call's params from that declaration with the accessors below, and
`Param.schema` is what rpc.discover and docs/api.md show.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from protocol.errors import invalid_params


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


# The default of a parameter that has none: the caller must send it.
_MISSING: Any = _Required()
REQUIRED: Any = _MISSING


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
        if value is None and default is None:
            return None  # an optional flag left out: unchanged
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

    def unread(self) -> dict[str, Any]:
        """The params no accessor has read yet, which count as read from now on."""
        rest = {name: value for name, value in self._params.items() if name not in self._seen}
        self._seen.update(rest)
        return rest

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


class Kind(StrEnum):
    """A parameter's type; the value is its JSON Schema `type` (see Param.schema)."""

    TEXT = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TEXT_LIST = "string list"
    INTEGER_LIST = "integer list"
    MAPPING = "object"
    ANY = "any"  # checked by the handler itself
    REST = "rest"  # every undeclared param, as an object the handler checks (one per method)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind
    summary: str
    default: Any = REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def read(self, p: Params) -> Any:
        """This parameter's checked value (the accessor's -32602 errors name the field)."""
        default = self.default
        if self.kind is Kind.TEXT:
            value = p.text(self.name, default, max_length=self.max_length or 10_000)
        elif self.kind is Kind.INTEGER:
            value = p.integer(
                self.name,
                default,
                minimum=None if self.minimum is None else int(self.minimum),
                maximum=None if self.maximum is None else int(self.maximum),
            )
        elif self.kind is Kind.NUMBER:
            value = p.number(self.name, default, minimum=self.minimum, maximum=self.maximum)
        elif self.kind is Kind.BOOLEAN:
            value = p.boolean(self.name, default)
        elif self.kind is Kind.TEXT_LIST:
            value = p.text_list(self.name, default)
        elif self.kind is Kind.INTEGER_LIST:
            value = p.integer_list(self.name, default)
        elif self.kind is Kind.MAPPING:
            value = p.mapping(self.name, default)
        elif self.kind is Kind.REST:
            value = {**p.unread(), **p.mapping(self.name, {})}
            value.pop(self.name, None)
        else:
            value = p.raw(self.name, default)
        if self.choices and value is not default and value not in self.choices:
            raise invalid_params(
                f"{p.method}: unknown {self.name} {value!r}: expected one of "
                + ", ".join(self.choices),
                f"bad_{self.name}",
            )
        return value

    def type_text(self) -> str:
        """Its type for people: `integer, 1 to 10000` or `string, fail_fast | finish`."""
        kinds = {
            Kind.TEXT_LIST: "list of strings",
            Kind.INTEGER_LIST: "list of integers",
            Kind.REST: "object: any other params",
        }
        facts = [kinds.get(self.kind, str(self.kind))]
        if self.choices:
            facts.append(" | ".join(self.choices))
        if self.minimum is not None or self.maximum is not None:
            low = "…" if self.minimum is None else _number(self.minimum)
            high = "…" if self.maximum is None else _number(self.maximum)
            facts.append(f"{low} to {high}")
        return ", ".join(facts)

    def default_text(self) -> str:
        """`required`, or its default as JSON (`null`: left out means none)."""
        if self.required:
            return "required"
        return json.dumps(self.default, ensure_ascii=False)

    def describe(self) -> str:
        """One line: `limit (integer, 1 to 10000; default 100): at most this many`."""
        default = self.default_text()
        when = default if self.required else f"default {default}"
        return f"{self.name} ({self.type_text()}; {when}): {self.summary}"

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of its value, as rpc.discover and docs/api.md show it."""
        schema: dict[str, Any]
        if self.kind is Kind.TEXT_LIST:
            schema = {"type": "array", "items": {"type": "string"}}
        elif self.kind is Kind.INTEGER_LIST:
            schema = {"type": "array", "items": {"type": "integer"}}
        elif self.kind is Kind.ANY:
            schema = {}
        elif self.kind is Kind.REST:
            schema = {"type": "object"}
        else:
            schema = {"type": str(self.kind)}
        if self.kind is Kind.TEXT:
            schema["maxLength"] = self.max_length or 10_000
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if not self.required:
            schema["default"] = self.default
        return schema


def string(
    name: str,
    summary: str,
    default: Any = REQUIRED,
    *,
    max_length: int = 10_000,
    choices: Iterable[str] = (),
) -> Param:
    return Param(name, Kind.TEXT, summary, default, max_length=max_length, choices=tuple(choices))


def integer(
    name: str,
    summary: str,
    default: Any = REQUIRED,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Param:
    return Param(name, Kind.INTEGER, summary, default, minimum=minimum, maximum=maximum)


# Ids are stored as 64-bit integers: a larger one is refused as out of range, never sent to SQL.
MAX_ID = 2**62


def record_id(name: str, summary: str, default: Any = REQUIRED) -> Param:
    """A stored record's id (job_id, task_id, …): an integer up to MAX_ID."""
    return integer(name, summary, default, maximum=MAX_ID)


def number(
    name: str,
    summary: str,
    default: Any = REQUIRED,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Param:
    return Param(name, Kind.NUMBER, summary, default, minimum=minimum, maximum=maximum)


def boolean(name: str, summary: str, default: Any = REQUIRED) -> Param:
    return Param(name, Kind.BOOLEAN, summary, default)


def text_list(name: str, summary: str, default: Any = REQUIRED) -> Param:
    return Param(name, Kind.TEXT_LIST, summary, default)


def integer_list(name: str, summary: str, default: Any = REQUIRED) -> Param:
    return Param(name, Kind.INTEGER_LIST, summary, default)


def mapping(name: str, summary: str, default: Any = REQUIRED) -> Param:
    return Param(name, Kind.MAPPING, summary, default)


def rest(name: str, summary: str) -> Param:
    """The params a method does not declare, handed to the handler as one object (also
    accepted as an object under `name`): a method with one checks them itself."""
    return Param(name, Kind.REST, summary, {})


def anything(name: str, summary: str, default: Any = REQUIRED) -> Param:
    return Param(name, Kind.ANY, summary, default)


def parse_params(method: str, declared: Sequence[Param], params: dict[str, Any]) -> dict[str, Any]:
    """The values of `declared` read from `params`, in declaration order; undeclared ones are
    refused after the declared ones are checked."""
    p = Params(method, params)
    # A REST param (the undeclared ones) is read last, once every declared one has been.
    ordered = sorted(declared, key=lambda param: param.kind is Kind.REST)
    values = {param.name: param.read(p) for param in ordered}
    p.finish()
    return {param.name: values[param.name] for param in declared}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
