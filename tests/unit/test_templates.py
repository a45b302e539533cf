"""Job templates, in process: what each built-in makes of its fields, how they refuse bad
fields, and studio templates read from TOML text."""

from __future__ import annotations

from typing import Any

import pytest

from farmhand.master.jobs.studio import parse_studio_template
from farmhand.master.jobs.submit import SUBMIT_PARAMS, read_submission
from farmhand.master.jobs.templates import Catalog
from farmhand.master.params import parse_params
from protocol.errors import RpcError
from protocol.frames import expand_argv

pytestmark = pytest.mark.fast

NUKE = """
name = "nuke"
summary = "Render a Nuke script"
argv = ["nuke", "-x", "-F", "{start}-{end}", "{script}", "{flags}"]
outputs = "{output}"
[params.script]
summary = "the .nk file"
required = true
[params.output]
default = "render/####.exr"
[params.flags]
type = "strings"
default = ["--cont"]
"""


def submit(catalog: Catalog | None = None, **params: Any) -> dict[str, Any]:
    declared = parse_params("jobs.submit", SUBMIT_PARAMS, {"name": "j", **params})
    return read_submission(declared, {1}, 1000, catalog)


def test_blender_renders_each_tasks_frames_and_names_its_outputs() -> None:
    spec = submit(template="blender", file="/farm/shot.blend", frames="1-4", device="CPU")
    argv = spec["argv"]
    assert argv[:7] == ["blender", "-b", "/farm/shot.blend", "-o", "//render/####", "-F", "PNG"]
    assert expand_argv(argv, job=1, task=0, start=3, end=4)[7:] == [
        "-s", "3", "-e", "4", "-a", "--", "--cycles-device", "CPU",
    ]  # fmt: skip
    assert spec["outputs"] == "/farm/render/*.png"
    assert len(spec["chunks"]) == 4


def test_blender_sets_negative_frames_through_python_not_relative_flags() -> None:
    spec = submit(template="blender", file="s.blend", frames="-2--1", output="out/f_", chunk=2)
    argv = expand_argv(spec["argv"], job=1, task=0, start=-2, end=-1)
    assert "-s" not in argv and argv[-1] == "-a"
    assert "s.frame_start = -2; s.frame_end = -1" in argv[-2]
    assert spec["outputs"] == "out/f_*.png"


def test_ffmpeg_encodes_a_sequence_into_one_task() -> None:
    spec = submit(
        template="ffmpeg", input="r/f_####.png", output="r/{job}.mp4", fps=12, depends_on=[1]
    )
    assert spec["chunks"] == [(None, None)]
    argv = spec["argv"]
    assert argv[argv.index("-i") + 1] == "r/f_%04d.png"
    assert argv[argv.index("-framerate") + 1] == "12"
    # A value is put in literally: braces in a field are not placeholders.
    assert argv[-1] == "r/{{job}}.mp4" and spec["depends_on"] == [1]


def test_command_is_argv_as_today_and_outputs_pass_through() -> None:
    spec = submit(template="command", argv=["echo", "{frame}"], frames="1-2", outputs="o/{frame}")
    assert spec["argv"] == ["echo", "{frame}"] and spec["outputs"] == "o/{frame}"


@pytest.mark.parametrize(
    ("params", "reason", "words"),
    [
        ({"template": "maya"}, "no_such_template", "known are blender, command, ffmpeg"),
        ({"template": "blender", "frames": "1"}, "missing_param", "'file' is required"),
        ({"template": "blender", "file": "a.blend"}, "missing_param", "needs frames"),
        ({"template": "blender", "file": "a.txt", "frames": "1"}, "bad_template_param", ".blend"),
        (
            {"template": "blender", "file": "a.blend", "frames": "1", "format": "GIF"},
            "bad_template_param",
            "one of PNG",
        ),
        (
            {"template": "blender", "file": "a.blend", "frames": "1", "argv": ["x"]},
            "bad_template_param",
            "do not pass argv",
        ),
        ({"template": "blender", "file": 3, "frames": "1"}, "bad_param", "must be a string"),
        ({"template": "ffmpeg", "input": "a.png", "output": "m.mp4"}, "bad_template_param", "#"),
        ({"template": "command"}, "missing_param", "needs argv"),
        ({"argv": ["x"], "outputs": "o/{frame}"}, "bad_outputs", "no frames"),
        ({"template": "ffmpeg", "input": "a#", "output": "m", "fsp": 1}, "unknown_param", "fsp"),
    ],
)
def test_templates_refuse_bad_fields_clearly(
    params: dict[str, Any], reason: str, words: str
) -> None:
    with pytest.raises(RpcError) as refused:
        submit(**params)
    assert refused.value.reason == reason
    assert words in refused.value.message


def test_a_studio_template_fills_its_params_and_keeps_task_placeholders() -> None:
    catalog = Catalog.with_builtins([parse_studio_template("nuke.toml", NUKE)])
    spec = submit(catalog, template="nuke", script="/s/a {v}.nk", frames="1-10", chunk=5)
    assert expand_argv(spec["argv"], job=1, task=0, start=1, end=5) == [
        "nuke", "-x", "-F", "1-5", "/s/a {v}.nk", "--cont",
    ]  # fmt: skip
    assert spec["outputs"] == "render/####.exr"
    names = [view["name"] for view in catalog.views()]
    assert names == ["blender", "command", "ffmpeg", "nuke"]
    nuke = catalog.views()[-1]
    assert [p["name"] for p in nuke["params"]] == ["script", "output", "flags"]
    assert nuke["params"][0]["required"] and nuke["needs_frames"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('name = "Bad Name"\nargv = ["x"]', "name must be"),
        ('name = "x"\nargv = []', "argv must be"),
        ('name = "x"\nargv = ["{nope}"]', "{nope}"),
        ('name = "x"\nargv = ["x"]\n[params.frames]', "job param"),
        ('name = "x"\nargv = ["x"]\n[params.a]\ntype = "blob"', "type must be"),
        ('name = "x"\nargv = ["x"]\ncolour = 1', "unknown keys colour"),
        ('name = "blender"\nargv = ["x"]', "is taken"),
        ('name = "x"\nargv = ["x"]\n[params.n]\ntype = "integer"\ndefault = "4"', "not integer"),
        ("name = ", "studio.toml"),
    ],
)
def test_a_bad_studio_template_is_refused_with_its_file_named(text: str, words: str) -> None:
    with pytest.raises(ValueError) as refused:
        Catalog.with_builtins([parse_studio_template("studio.toml", text)])
    assert words in str(refused.value) and "studio.toml" in str(refused.value)


def test_template_params_may_come_as_one_object_too() -> None:
    spec = submit(template="blender", frames="1", template_params={"file": "a.blend"})
    assert spec["argv"][2] == "a.blend"
    with pytest.raises(RpcError) as refused:
        submit(argv=["true"], file="a.blend")  # no template: an undeclared param
    assert refused.value.reason == "unknown_param" and "'file'" in refused.value.message
