"""Job templates: a few friendly fields turned into a job's argv, outputs and progress.

`jobs.submit` with `template` reads that template's params beside the job's own (name, frames,
chunk, priority, tags, depends_on, …) and the template fills in `argv` (and `outputs` and
`progress_regex` unless given). Three are built in: `command` (argv as given), `blender` (render
a .blend file's frames) and `ffmpeg` (encode a frame sequence into a movie). A studio adds its
own as TOML files in the folder the master's `--templates DIR` names (docs/templates.md):

    name = "nuke"
    summary = "Render a Nuke script's write node"
    argv = ["nuke", "-x", "-F", "{start}-{end}", "{script}"]
    outputs = "{output}"
    [params.script]
    summary = "the .nk file"
    required = true
    [params.output]
    default = "render/####.exr"

Sans-IO: templates are parsed from TOML text and expanded from params; reading the folder is the
caller's (farmhand/master/app.py). Errors are -32602 with reason `bad_template_param` or
`no_such_template`, and ValueError for a studio file that cannot be used.
"""

from __future__ import annotations

import posixpath
import re
import string
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import invalid_params
from protocol.frames import PLACEHOLDERS, parse_frames

from ..params import Params

KINDS = ("string", "integer", "number", "boolean", "strings")
# Params every job has: a template may read them but not declare them again.
JOB_PARAMS = frozenset(
    {
        "name", "argv", "frames", "chunk", "priority", "tags", "max_attempts", "timeout_s",
        "env", "cwd", "depends_on", "progress_regex", "fail_policy", "retry_delay_s",
        "template", "outputs",
    }
)  # fmt: skip
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_HASHES = re.compile(r"#+")
# Blender's image formats (-F) and the extension it gives their files.
BLENDER_FORMATS = {
    "PNG": "png",
    "JPEG": "jpg",
    "OPEN_EXR": "exr",
    "OPEN_EXR_MULTILAYER": "exr",
    "TIFF": "tif",
    "BMP": "bmp",
    "TARGA": "tga",
    "WEBP": "webp",
}
CYCLES_DEVICES = ("CPU", "CUDA", "OPTIX", "HIP", "ONEAPI", "METAL")


@dataclass(frozen=True, slots=True)
class Param:
    """One field of a template: its kind (one of KINDS), whether it must be given, a default."""

    name: str
    kind: str = "string"
    summary: str = ""
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "name": self.name,
            "type": self.kind,
            "required": self.required,
            "summary": self.summary,
        }
        if self.default is not None:
            view["default"] = self.default
        if self.choices:
            view["choices"] = list(self.choices)
        return view

    def read(self, p: Params) -> Any:
        """The value from the submit's params (or the default); -32602 when it is wrong."""
        default = None if self.required else self.default
        if self.required and p.raw(self.name, None) is None:
            raise invalid_params(
                f"jobs.submit: template param '{self.name}' is required ({self.summary})",
                "missing_param",
            )
        readers: dict[str, Callable[[str, Any], Any]] = {
            "string": p.text,
            "integer": p.integer,
            "number": p.number,
            "boolean": p.boolean,
            "strings": p.text_list,
        }
        value = readers[self.kind](self.name, default)
        if self.choices and value is not None and value not in self.choices:
            raise invalid_params(
                f"jobs.submit: template param '{self.name}' must be one of "
                f"{', '.join(self.choices)}, not {value!r}",
                "bad_template_param",
            )
        return value


@dataclass(frozen=True, slots=True)
class Expansion:
    """What a template makes of its params: the job's argv and, when it knows them, the files
    its tasks write (`outputs`) and how to read their progress."""

    argv: list[str]
    outputs: str | None = None
    progress_regex: str | None = None


Builder = Callable[[dict[str, Any], "JobFields"], Expansion]


@dataclass(frozen=True, slots=True)
class JobFields:
    """The job params a template may look at."""

    frames: str
    argv: list[str] | None


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    summary: str
    params: tuple[Param, ...]
    build: Builder
    needs_frames: bool = False
    source: str = "builtin"  # or the studio file it came from

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "params": [param.view() for param in self.params],
            "needs_frames": self.needs_frames,
            "source": self.source,
        }

    def expand(self, p: Params, job: JobFields) -> Expansion:
        values = {param.name: param.read(p) for param in self.params}
        if self.needs_frames and not job.frames:
            raise invalid_params(
                f'jobs.submit: template {self.name} needs frames (e.g. frames="1-250")',
                "missing_param",
            )
        if job.argv is not None and self.name != "command":
            raise invalid_params(
                f"jobs.submit: template {self.name} makes the argv: do not pass argv too",
                "bad_template_param",
            )
        return self.build(values, job)


@dataclass
class Catalog:
    """The templates a master offers: the built-in ones, then the studio's."""

    templates: dict[str, Template] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls, studio: Iterable[Template] = ()) -> Catalog:
        catalog = cls({t.name: t for t in BUILTIN})
        for template in studio:
            if template.name in catalog.templates:
                raise ValueError(
                    f"template {template.source}: the name {template.name!r} is taken "
                    f"(by {catalog.templates[template.name].source})"
                )
            catalog.templates[template.name] = template
        return catalog

    def get(self, name: str) -> Template:
        template = self.templates.get(name)
        if template is None:
            raise invalid_params(
                f"jobs.submit: unknown template {name!r}: known are "
                + ", ".join(sorted(self.templates)),
                "no_such_template",
            )
        return template

    def views(self) -> list[dict[str, Any]]:
        return [self.templates[name].view() for name in sorted(self.templates)]


# -- command -------------------------------------------------------------------------------
def _command(values: dict[str, Any], job: JobFields) -> Expansion:
    if job.argv is None:
        raise invalid_params("jobs.submit: template command needs argv", "missing_param")
    return Expansion(list(job.argv))


# -- blender -------------------------------------------------------------------------------
BLENDER_PARAMS = (
    Param("file", summary="the .blend file, as the workers see it", required=True),
    Param(
        "output",
        summary="output path; # marks the frame number's digits, // is the .blend's folder",
        default="//render/####",
    ),
    Param("format", summary="image format (-F)", default="PNG", choices=tuple(BLENDER_FORMATS)),
    Param("engine", summary="render engine (-E), e.g. CYCLES; default: the file's"),
    Param("device", summary="Cycles device (--cycles-device)", choices=CYCLES_DEVICES),
    Param("threads", "integer", summary="render threads (-t; 0: all cores)"),
    Param("blender", summary="the Blender program on the workers", default="blender"),
    Param("args", "strings", summary="extra arguments before the render flags", default=[]),
)


def _blender(values: dict[str, Any], job: JobFields) -> Expansion:
    blend: str = values["file"]
    output: str = values["output"]
    if not blend.endswith(".blend"):
        raise invalid_params(
            f"jobs.submit: template blender: file {blend!r} is not a .blend file",
            "bad_template_param",
        )
    if not output.strip():
        raise invalid_params("jobs.submit: template blender: output is empty", "bad_template_param")
    argv = [values["blender"], "-b", _braces(blend), "-o", _braces(output), "-F", values["format"]]
    if values["engine"]:
        argv += ["-E", _braces(values["engine"])]
    if values["threads"] is not None:
        argv += ["-t", str(values["threads"])]
    argv += [_braces(arg) for arg in values["args"]]
    if any(start < 0 for start, _ in parse_frames(job.frames)):
        # Blender reads "-5" after -s, -e or -f as relative to the scene's range: negative
        # frames are set through Python instead.
        argv += [
            "--python-expr",
            "import bpy; s = bpy.context.scene; s.frame_start = {start}; s.frame_end = {end}",
            "-a",
        ]
    else:
        argv += ["-s", "{start}", "-e", "{end}", "-a"]
    if values["device"]:
        argv += ["--", "--cycles-device", values["device"]]
    return Expansion(argv, outputs=_blender_outputs(blend, output, values["format"]))


def _blender_outputs(blend: str, output: str, image_format: str) -> str:
    """A glob of the frames Blender writes: `#` runs are the frame number (Blender adds four
    when there is none), its extension follows."""
    path = output
    if path.startswith("//"):
        path = posixpath.join(posixpath.dirname(blend), path[2:])
    if "#" not in path:
        path += "####"
    return _braces(_HASHES.sub("*", path) + "." + BLENDER_FORMATS[image_format])


# -- ffmpeg --------------------------------------------------------------------------------
FFMPEG_PARAMS = (
    Param(
        "input",
        summary="the frame sequence: # or %04d marks the frame number, e.g. render/####.png",
        required=True,
    ),
    Param("output", summary="the movie to write, e.g. shot.mp4", required=True),
    Param("start", "integer", summary="the first frame of the sequence", default=1),
    Param("fps", "number", summary="frames per second", default=24),
    Param("codec", summary="video codec (-c:v)", default="libx264"),
    Param("pix_fmt", summary="pixel format (-pix_fmt)", default="yuv420p"),
    Param("crf", "integer", summary="quality (-crf; lower is better)"),
    Param("ffmpeg", summary="the ffmpeg program on the workers", default="ffmpeg"),
    Param("args", "strings", summary="extra output arguments", default=[]),
)


def _ffmpeg(values: dict[str, Any], job: JobFields) -> Expansion:
    pattern = _HASHES.sub(lambda m: f"%0{len(m.group(0))}d", values["input"])
    if "%" not in pattern:
        raise invalid_params(
            "jobs.submit: template ffmpeg: input must mark the frame number with # or %04d "
            f"(e.g. render/####.png), not {values['input']!r}",
            "bad_template_param",
        )
    if values["fps"] <= 0:
        raise invalid_params(
            "jobs.submit: template ffmpeg: fps must be positive", "bad_template_param"
        )
    argv = [values["ffmpeg"], "-hide_banner", "-nostdin", "-y"]
    argv += ["-framerate", f"{values['fps']:g}", "-start_number", str(values["start"])]
    argv += ["-i", _braces(pattern), "-c:v", values["codec"], "-pix_fmt", values["pix_fmt"]]
    if values["crf"] is not None:
        argv += ["-crf", str(values["crf"])]
    argv += [_braces(arg) for arg in values["args"]]
    argv.append(_braces(values["output"]))
    return Expansion(argv, outputs=_braces(values["output"]))


BUILTIN = (
    Template("command", "run argv as given (placeholders expanded per task)", (), _command),
    Template(
        "blender",
        "render a .blend file's frames: blender -b FILE -o OUT -F FMT … -a",
        BLENDER_PARAMS,
        _blender,
        needs_frames=True,
    ),
    Template("ffmpeg", "encode a frame sequence into a movie (one task)", FFMPEG_PARAMS, _ffmpeg),
)


def _braces(text: str) -> str:
    """A value put into argv literally: its braces are not placeholders."""
    return text.replace("{", "{{").replace("}", "}}")


# -- studio templates (TOML) ---------------------------------------------------------------
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
    if not isinstance(name, str) or not _NAME.fullmatch(name):
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
                expanded += [_braces(str(item)) for item in value]  # an argument each
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
    if not _NAME.fullmatch(name.replace("-", "_")) or "-" in name:
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
    return Param(
        name,
        kind,
        str(spec.get("summary", "")),
        required,
        spec.get("default"),
        tuple(choices),
    )


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
                return _braces(",".join(str(item) for item in found))
            return _braces(str(found))
        return match.group(0)

    return re.sub(r"(?<!\{)\{(\w+)\}(?!\})", value, text)
