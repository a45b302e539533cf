"""docs/api.md, generated from the method table: `python -m farmhand.master.api.docs --write`
rewrites it, `--check` fails when it is stale (tests/unit/test_api_docs.py does the same).

It says what rpc.discover says (farmhand/master/api/openrpc.py), grouped by api module, for
people: each method's summary, who may call it, whether it is audited, and its params.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import MODULES
from .base import Access
from .openrpc import document, method_document

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
COMMAND = "python -m farmhand.master.api.docs --write"

INTRO = f"""# API reference

<!-- Generated from the method table by `{COMMAND}`; do not edit by hand.
     tests/unit/test_api_docs.py fails when this file is stale. -->

The master answers JSON-RPC 2.0 on its port, one JSON object per line (docs/protocol.md has
the wire format). Params are by name; a param a method does not declare is refused with
-32602 (`unknown_param`), and so is a value of the wrong type or out of its bounds.
`rpc.discover` answers this same table as an OpenRPC {{openrpc}} document: every method with
its summary, its params (JSON Schema, `default` and `required`), `x-access` (who may call it)
and `x-writes` (a state-changing call).

**Who may call**: `admin` is a trusted loopback peer or an `api` key of scope admin, `read` an
`api` key of scope read; `worker`, `hardware`, `auth` and `node` are agents after their
`hello`. docs/security.md has the same permissions as one table. **Audited** calls are
recorded in the audit log (`audit.list`) and answered only once their change is stored.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    doc = document()
    out = [INTRO.replace("{openrpc}", doc["openrpc"])]
    for module in MODULES:
        title = (module.__doc__ or module.__name__).strip().splitlines()[0]
        out.append(f"## {module.__name__.rsplit('.', 1)[-1]}\n\n{title}\n")
        for entry in module.METHODS:
            view = method_document(entry)
            who = ", ".join(f"`{name}`" for name in view["x-access"]["principals"])
            if entry.access is Access.OPEN:
                who = f"anyone, before `hello` too ({who})"
            out.append(f"### `{entry.name}`\n\n{entry.summary}\n")
            out.append(f"Who may call: {who}." + (" Audited." if entry.writes else "") + "\n")
            if entry.params:
                rows = ["| param | type | default | what |", "|---|---|---|---|"]
                for param in entry.params:
                    default = param.default_text()
                    default = "**required**" if param.required else f"`{default}`"
                    rows.append(
                        f"| `{param.name}` | {_cell(param.type_text())} | {_cell(default)} "
                        f"| {_cell(param.summary)} |"
                    )
                out.append("\n".join(rows) + "\n")
            else:
                out.append("No params.\n")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        DOC.write_text(render())
        return 0
    if argv == ["--check"]:
        if DOC.read_text() != render():
            print(f"{DOC} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    print(render(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
