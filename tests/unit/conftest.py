"""Shared fixtures of the in-process tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import protocol.jsonrpc as jsonrpc

# The two JSON codecs protocol/ runs on: orjson (the fast path) and the standard library's
# json (the stdlib-only client, e.g. inside Blender).
JSON_BACKENDS = {
    "orjson": (jsonrpc.loads, jsonrpc.dump_line),
    "json": (jsonrpc.stdlib_loads, jsonrpc.stdlib_dump_line),
}


@pytest.fixture(params=sorted(JSON_BACKENDS), scope="module")
def json_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the module's tests once per JSON codec (opt in with `usefixtures`)."""
    if jsonrpc.JSON_BACKEND != "orjson":
        pytest.skip("orjson is not installed: only the stdlib codec can run")
    saved = jsonrpc.loads, jsonrpc.dump_line
    jsonrpc.loads, jsonrpc.dump_line = JSON_BACKENDS[request.param]
    try:
        yield request.param
    finally:
        jsonrpc.loads, jsonrpc.dump_line = saved
