#!/usr/bin/env python3
"""A tiny relay from farmhand webhooks to Slack or Discord (standard library only).

Slack's incoming webhooks want `{"text": …}` and Discord's want `{"content": …}`: neither takes
farmhand's `{event, time, data}` as it is. Run this next to the master, point a farmhand webhook
at it, and it checks the signature, writes one line of text per event and POSTs it on:

    python3 contrib/webhook_relay.py --listen 127.0.0.1:8099 --secret S3CRET \\
        --slack https://hooks.slack.com/services/T000/B000/XXXX
    farmhand webhooks create http://127.0.0.1:8099/ --events job.completed,job.failed \\
        --secret S3CRET

(`--discord https://discord.com/api/webhooks/ID/TOKEN` for Discord.) The relay answers farmhand
with the status Slack or Discord gave it, so farmhand's retries and delivery log cover the whole
path. docs/webhooks.md explains the body, the signature and the retries.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20


def event_text(event: dict[str, Any]) -> str:
    """One line a person reads: `farmhand: job 12 (shot-010) completed`."""
    name, data = event.get("event", "?"), event.get("data") or {}
    if name.startswith("job."):
        return f"farmhand: job {data.get('id')} ({data.get('name')}) {name[4:]}"
    if name == "client.offline":
        return f"farmhand: {data.get('name')} went offline ({data.get('reason')})"
    details = ", ".join(
        f"{key}={value}" for key, value in data.items() if not isinstance(value, (dict, list))
    )
    return f"farmhand: {name} {details}".rstrip()


def verified(secret: str | None, body: bytes, header: str | None) -> bool:
    if not secret:
        return True
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(header, expected)


def forward(url: str, field: str, text: str, timeout_s: float = 10.0) -> int:
    """POST {field: text} to url; the status code (an HTTP error's too)."""
    request = urllib.request.Request(
        url,
        data=json.dumps({field: text}).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "farmhand-relay/1"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 502


def make_handler(secret: str | None, url: str, field: str) -> type[BaseHTTPRequestHandler]:
    class Relay(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                return self._answer(413 if length else 400)
            body = self.rfile.read(length)
            if not verified(secret, body, self.headers.get("X-Farmhand-Signature")):
                return self._answer(401)
            try:
                event = json.loads(body)
            except ValueError:
                return self._answer(400)
            self._answer(forward(url, field, event_text(event)))

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"relay: {format % args}\n")

    return Relay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8099", metavar="HOST:PORT")
    parser.add_argument("--secret", help="the farmhand webhook's secret (checks each signature)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--slack", metavar="URL", help="a Slack incoming-webhook URL")
    target.add_argument("--discord", metavar="URL", help="a Discord webhook URL")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    url, field = (args.slack, "text") if args.slack else (args.discord, "content")
    host = host or "127.0.0.1"
    server = ThreadingHTTPServer((host, int(port)), make_handler(args.secret, url, field))
    print(f"relay listening on http://{host}:{server.server_port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
