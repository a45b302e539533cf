"""`farmhand templates`: the job templates the master offers and their params."""

from __future__ import annotations

import argparse

from .base import EXIT_OK, Command, Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="only this template")


def run(ctx: Context, args: argparse.Namespace) -> int:
    listed = ctx.client.request("jobs.templates", {})
    chosen = [t for t in listed["templates"] if args.name in (None, t["name"])]
    lines = []
    for template in chosen:
        lines.append(f"{template['name']}: {template['summary']}")
        for param in template["params"]:
            flag = "required" if param["required"] else f"default {param.get('default', '-')!r}"
            choices = f" ({'|'.join(param['choices'])})" if param.get("choices") else ""
            lines.append(f"  {param['name']:10} {param['type']:8} {flag}: {param['summary']}")
            if choices:
                lines[-1] += choices
    if args.name is not None and not chosen:
        lines.append(f"no template {args.name!r}")
    ctx.emit({"templates": chosen}, "\n".join(lines))
    return EXIT_OK


COMMAND = Command(
    "templates",
    "list job templates and their params (for submit --template)",
    add_arguments,
    run,
    examples=("farmhand templates", "farmhand templates blender"),
)
