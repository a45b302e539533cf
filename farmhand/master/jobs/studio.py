"""Studio job templates: a TOML file's text → a Template (docs/templates.md).

    name = "nuke"
    argv = ["nuke", "-x", "-F", "{start}-{end}", "{script}"]
    [params.script]
    required = true

`{param}` is filled in from the submit's params; the farm's per-task placeholders ({frame}, …)
are kept. Every problem is a ValueError naming the file; sans-IO (the caller reads the file).
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from typing import Any

from protocol.errors import invalid_params
from protocol.frames import PLACEHOLDERS

from .templates import KINDS, NAME, Expansion, JobFields, Param, Template, braces

JOB_PARAMS = frozenset(
    {
        "name", "argv", "frames", "chunk", "priority", "tags", "max_attempts", "timeout_s",
        "env", "cwd", "depends_on", "progress_regex", "fail_policy", "retry_delay_s",
        "template", "outputs",
    }
)  # fmt: skip


def parse_studio_template(source: str, text: str) -> Template:
    """A template from a TOML file's text (`source` names it in errors); ValueError."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"template {source}: {exc}") from None
    known = {"name", "summary", "argv", "outputs", "progress_regex", "params", "needs_frames"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValueError(f"template {source}: unknown keys {', '.join(unknown)}")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(
            f"template {source}: name must be lower-case letters, digits, - and _ (got {name!r})"
        )
    argv = doc.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"template {source}: argv must be a non-empty list of strings")
    params = tuple(_studio_param(source, key, spec) for key, spec in _table(doc, "params", source))
    names = {param.name for param in params}
    outputs = doc.get("outputs")
    progress = doc.get("progress_regex")
    for key, value in (("outputs", outputs), ("progress_regex", progress)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"template {source}: {key} must be a string")
    if progress is not None:
        try:
            re.compile(progress)
        except re.error as exc:
            raise ValueError(f"template {source}: bad progress_regex: {exc}") from None
    for text_ in [*argv, *([outputs] if outputs else [])]:
        for used in _fields(source, text_):
            if used not in names and used not in PLACEHOLDERS:
                raise ValueError(
                    f"template {source}: {{{used}}} in {text_!r} is neither a param of the "
                    f"template nor a placeholder ({', '.join(PLACEHOLDERS)})"
                )
    uses_frames = any(
        used in ("frame", "start", "end", "frames") for a in argv for used in _fields(source, a)
    )
    needs_frames = doc.get("needs_frames", uses_frames)
    if not isinstance(needs_frames, bool):
        raise ValueError(f"template {source}: needs_frames must be true or false")
    summary = doc.get("summary", "")
    if not isinstance(summary, str):
        raise ValueError(f"template {source}: summary must be a string")

    def build(values: dict[str, Any], job: JobFields) -> Expansion:
        expanded: list[str] = []
        for arg in argv:
            whole = re.fullmatch(r"\{(\w+)\}", arg)
            value = values.get(whole.group(1)) if whole else None
            if whole and whole.group(1) in names and value is None:
                continue  # an optional param left out: its argument goes too
            if isinstance(value, list):
                expanded += [braces(str(item)) for item in value]  # an argument each
            else:
                expanded.append(_fill(arg, values))
        if not expanded:
            raise invalid_params(f"jobs.submit: template {name} made an empty argv", "bad_argv")
        return Expansion(
            expanded,
            outputs=_fill(outputs, values) if outputs else None,
            progress_regex=progress,
        )

    return Template(name, summary, params, build, needs_frames=needs_frames, source=source)


def _table(doc: Mapping[str, Any], key: str, source: str) -> list[tuple[str, Any]]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"template {source}: [{key}] must be a table")
    return list(value.items())


def _studio_param(source: str, name: str, spec: Any) -> Param:
    if not NAME.fullmatch(name.replace("-", "_")) or "-" in name:
        raise ValueError(f"template {source}: param name {name!r} is not a plain lower-case name")
    if name in JOB_PARAMS:
        raise ValueError(
            f"template {source}: param {name!r} is a job param already (jobs.submit reads it)"
        )
    if not isinstance(spec, dict):
        raise ValueError(f"template {source}: [params.{name}] must be a table")
    unknown = sorted(set(spec) - {"type", "summary", "required", "default", "choices"})
    if unknown:
        raise ValueError(f"template {source}: [params.{name}] has unknown keys {unknown}")
    kind = spec.get("type", "string")
    if kind not in KINDS:
        raise ValueError(f"template {source}: [params.{name}] type must be one of {KINDS}")
    choices = spec.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise ValueError(f"template {source}: [params.{name}] choices must be strings")
    required = spec.get("required", False)
    if not isinstance(required, bool):
        raise ValueError(f"template {source}: [params.{name}] required must be true or false")
    default = spec.get("default")
    if default is not None and not _is_kind(default, kind):
        raise ValueError(f"template {source}: [params.{name}] default {default!r} is not {kind}")
    return Param(
        name,
        kind,
        str(spec.get("summary", "")),
        required,
        spec.get("default"),
        tuple(choices),
    )


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "boolean" or isinstance(value, bool):
        return kind == "boolean" and isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float)
    return isinstance(value, int if kind == "integer" else str)


def _fields(source: str, text: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name]
    except ValueError as exc:
        raise ValueError(f"template {source}: bad braces in {text!r}: {exc}") from None


def _fill(text: str, values: dict[str, Any]) -> str:
    """Template params filled in; task placeholders ({frame}, …) kept for the farm."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            found = values[name]
            if found is None:
                return ""
            if isinstance(found, list):
                return braces(",".join(str(item) for item in found))
            return braces(str(found))
        return match.group(0)

    return re.sub(r"(?<!\{)\{(\w+)\}(?!\})", value, text)
