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

Sans-IO: templates are expanded from params; studio files are parsed from their text in
studio.py, and reading the folder is the caller's (farmhand/master/app.py). Errors are -32602
with reason `bad_template_param` or `no_such_template`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import invalid_params
from protocol.frames import parse_frames

from ..params import Params

KINDS = ("string", "integer", "number", "boolean", "strings")
NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
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
    argv = [values["blender"], "-b", braces(blend), "-o", braces(output), "-F", values["format"]]
    if values["engine"]:
        argv += ["-E", braces(values["engine"])]
    if values["threads"] is not None:
        argv += ["-t", str(values["threads"])]
    argv += [braces(arg) for arg in values["args"]]
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
    return braces(_HASHES.sub("*", path) + "." + BLENDER_FORMATS[image_format])


# -- ffmpeg --------------------------------------------------------------------------------
FFMPEG_PARAMS = (
    Param(
        "input",
        summary="the frame sequence: # or %04d marks the frame number, e.g. render/####.png",
        required=True,
    ),
    Param("output", summary="the movie to write, e.g. shot.mp4", required=True),
    Param(
        "start",
        "integer",
        summary="the first frame of the sequence (with frames: the task's first frame)",
        default=1,
    ),
    Param("fps", "number", summary="frames per second", default=24),
    Param("codec", summary="video codec (-c:v)", default="libx264"),
    Param("pix_fmt", summary="pixel format (-pix_fmt)", default="yuv420p"),
    Param("crf", "integer", summary="quality (-crf; lower is better)"),
    Param("ffmpeg", summary="the ffmpeg program on the workers", default="ffmpeg"),
    Param("args", "strings", summary="extra output arguments", default=[]),
)


# ffmpeg's status line, `frame=  123 fps= 25 …` redrawn with \r: frames encoded so far.
FFMPEG_PROGRESS = r"frame=\s*(?P<count>\d+)"


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
    # With frames (one task over them: chunk as large as the range) the task's range is the
    # sequence, and ffmpeg's `frame=  N` lines are its progress; without, there is no total.
    start = "{start}" if job.frames else str(values["start"])
    argv += ["-framerate", f"{values['fps']:g}", "-start_number", start]
    argv += ["-i", braces(pattern), "-c:v", values["codec"], "-pix_fmt", values["pix_fmt"]]
    if values["crf"] is not None:
        argv += ["-crf", str(values["crf"])]
    argv += [braces(arg) for arg in values["args"]]
    argv.append(braces(values["output"]))
    return Expansion(argv, outputs=braces(values["output"]), progress_regex=FFMPEG_PROGRESS)


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


def braces(text: str) -> str:
    """A value put into argv literally: its braces are not placeholders."""
    return text.replace("{", "{{").replace("}", "}}")
