"""The operator console dialect: a line-based shell for `telnet` or `nc` on the master's port.

Before login (a remote or `--require-key` console) a line is only split on whitespace and only
`login` and `quit` run. After it, each line is split like a shell would (quotes work), `--json`
asks for the raw result, and the command runs through the same API as JSON-RPC. Errors are one
line; the session stays. Lines are limited to `max_console_line_bytes` (4 KB by default).
"""

from __future__ import annotations

import logging
import shlex
import socket
from typing import Any

import orjson

from farmhand.sendqueue import RECV_BYTES, Overflow, SendQueue
from protocol.errors import ErrorCode, RpcError
from protocol.framing import LineTooLong
from protocol.httpsniff import looks_like_http
from protocol.telnet import ConsoleInput, EndOfInput, Interrupt, Line, encode_output
from protocol.version import SOFTWARE_VERSION

from ..api.surface import Api
from ..services import Services
from ..session import Session
from . import Command, Reply, UsageError, lookup
from .session import suggest

log = logging.getLogger(__name__)

PROMPT = "farmhand> "
JSON_FLAG = "--json"
LOGIN_FIRST = "error: log in first: login KEY"


class ConsoleConnection(SendQueue):
    """One console session: the transport's send queue (a console that does not read is cut
    off like any peer) under telnet line handling (protocol/telnet.py)."""

    end_after_reply = False

    def __init__(
        self,
        sock: socket.socket,
        session: Session,
        services: Services,
        api: Api,
        *,
        greeted: bool = False,
    ) -> None:
        super().__init__(
            sock,
            name=session.peer,
            send_queue_bytes=services.config.send_queue_bytes,
            overflow=Overflow.CUT,
        )
        self.session = session
        self.services = services
        self.api = api
        self.greeted = greeted  # the server sent the banner already (after a silent start)

    def call(self, method: str, params: dict[str, Any]) -> Any:
        return self.api.call(self.session, method, params)

    def now(self) -> float:
        return self.services.clock.wall()

    def write(self, text: str) -> None:
        self.send_bytes(encode_output(text))

    @staticmethod
    def greeting(services: Services, session: Session) -> bytes:
        """The banner and the first prompt, as sent."""
        host, port = services.listen_address
        hint = (
            "Type 'help' for commands, 'quit' to leave."
            if session.authorized
            else "Log in first: login KEY ('quit' to leave)."
        )
        return encode_output(
            f"farmhand master {SOFTWARE_VERSION} on {host}:{port}. {hint}\n{PROMPT}"
        )

    def serve(self) -> None:
        if not self.greeted:
            self.send_bytes(self.greeting(self.services, self.session))
        limit = self.services.config.max_console_line_bytes
        reader = ConsoleInput(limit)
        try:
            while not self.closed:
                try:
                    data = self.sock.recv(RECV_BYTES)
                except OSError:
                    break
                if not data:
                    break
                for event in reader.feed(data):
                    if isinstance(event, Line):
                        if looks_like_http(event.text):
                            self._refuse_web_client()
                            return
                        self._run_line(event.text)
                    else:
                        assert isinstance(event, Interrupt | EndOfInput)
                        self.end_after_reply = True
                        self.write("\nbye\n")
                    if self.end_after_reply:
                        self.close("console session ended")
                        return
        except LineTooLong as exc:
            self.write(f"\nerror: {exc.message} (the console's limit); closing the session\n")
            self.close("line too long")

    def _refuse_web_client(self) -> None:
        """A browser (or any HTTP client) is talking to the console: whatever else it sent,
        e.g. a POST body of commands, must never run. Close without a word, as Redis does."""
        session = self.session
        self.services.guard.web_requests.warn(
            session.peer_host,
            self.services.clock.mono(),
            "%s: HTTP request on the master's port (a web page or proxy?): connection closed",
            session.peer,
        )
        self.close("HTTP request on the console")

    def _run_line(self, line: str) -> None:
        text = self.execute(line)
        self.write(f"{text}\n" if self.end_after_reply else f"{text}\n{PROMPT}" if text else PROMPT)

    def execute(self, line: str) -> str:
        """Run one command line and return what to print (without the prompt)."""
        if not self.session.authorized:
            return self._execute_before_login(line)
        try:
            words = shlex.split(line)
        except ValueError as exc:
            as_json = JSON_FLAG in _options(line.split())
            return _failure(ErrorCode.PARSE_ERROR, f"{exc} (check your quotes)", as_json)
        if not words:
            return ""
        # `--json` is ours only before `--`: what follows belongs to the program (submit).
        options = _options(words)
        as_json = JSON_FLAG in options
        words = [word for word in options if word != JSON_FLAG] + words[len(options) :]
        if not words:
            return ""
        name, args = words[0].lower(), words[1:]
        found = lookup(name)
        if found is None:
            message = f"unknown command '{name}'{suggest(name)} (type 'help')"
            return _failure(ErrorCode.METHOD_NOT_FOUND, message, as_json)
        return self._run(found, args, as_json)

    def _execute_before_login(self, line: str) -> str:
        # No shell-style parsing before login: a plain split is bounded and C-fast, and
        # nobody unauthenticated learns anything but how to log in.
        words = line.split()
        if not words:
            return ""
        found = lookup(words[0].lower())
        if found is None or not found.open:
            return LOGIN_FIRST
        return self._run(found, words[1:], as_json=False)

    def _run(self, found: Command, args: list[str], as_json: bool) -> str:
        try:
            reply: Reply = found.run(self, args)
        except UsageError as exc:
            return _failure(ErrorCode.INVALID_PARAMS, str(exc), as_json)
        except RpcError as exc:
            return _failure(exc.code, exc.message, as_json, exc.reason)
        except Exception:
            # Not the arguments: they may hold a secret (login KEY, users add … PASSWORD).
            log.exception("console %s: command %s failed", self.session.peer, found.name)
            return _failure(
                ErrorCode.INTERNAL_ERROR, "internal error (see the master's log)", as_json
            )
        if as_json:
            return orjson.dumps(reply.result).decode()
        return reply.text


def _options(words: list[str]) -> list[str]:
    """The words before the first `--`."""
    return words[: words.index("--")] if "--" in words else words


def _failure(code: int, message: str, as_json: bool, reason: str | None = None) -> str:
    """One error line: `error: …`, or with --json `{"error": {"code", "message", "data"?}}`."""
    if not as_json:
        return f"error: {message}"
    error: dict[str, Any] = {"code": int(code), "message": message}
    if reason:
        error["data"] = {"reason": reason}
    return orjson.dumps({"error": error}).decode()
