"""A tiny WSGI test client for the dashboard app (used by its tests and bench): builds environs,
keeps cookies, needs no server."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

WsgiApp = Callable[..., Iterable[bytes]]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: Iterator[bytes] | None = field(default=None, repr=False)
    _body: Any = field(default=None, repr=False)

    def close(self) -> None:
        """End a streamed response, as a server does when the browser goes away."""
        if hasattr(self._body, "close"):
            self._body.close()

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class WsgiClient:
    """Calls a WSGI app directly; cookies persist between calls like a browser's."""

    def __init__(self, app: WsgiApp, host: str = "127.0.0.1:8080"):
        self.app = app
        self.host = host
        self.remote_addr = "127.0.0.1"  # the browser's address, as the server sees it
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> Response:
        path, _, query_string = path.partition("?")
        if query:
            query_string = urlencode(query)
        content_type = ""
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            body, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
        body = body or b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query_string,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
            "HTTP_HOST": self.host,
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": content_type,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE",) else f"HTTP_{key}"] = value
        captured: dict[str, Any] = {}

        def start_response(
            status: str, header_list: list[tuple[str, str]], exc_info: Any = None
        ) -> None:
            captured["status"] = int(status.split()[0])
            captured["headers"] = header_list

        result = self.app(environ, start_response)
        iterator = iter(result)
        if not stream:
            chunks = list(iterator)
            if hasattr(result, "close"):
                result.close()
        header_list = captured["headers"]
        for name, value in header_list:
            if name.lower() == "set-cookie":
                self._store_cookie(value)
        headers_out = {name.title(): value for name, value in header_list}
        if stream:
            return Response(captured["status"], headers_out, stream=iterator, _body=result)
        return Response(captured["status"], headers_out, b"".join(chunks))

    def _store_cookie(self, header: str) -> None:
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            if morsel["max-age"] in ("0", "-1") or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Response:
        return self.request("POST", path, **kw)
