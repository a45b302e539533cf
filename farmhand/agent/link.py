"""An agent's JSON-RPC link to the master: the one transport (farmhand/transport.py), with the
agent's side of its rules.

Both sides send requests: the agent calls the master (`hello`, reports) and the master sends
orders, which run in their own greenlets so a slow order never blocks the reader. When the
master reads slowly, senders wait for room in the send queue (backpressure: a worker's output
is held back, never dropped while connected). Sending on a closed link raises `LinkClosed`.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from farmhand.transport import Handler, Overflow, RpcTransport
from protocol.framing import DEFAULT_MAX_LINE_BYTES
from protocol.jsonrpc import Request
from protocol.peer import PeerClosed

# An order handler: the order's params in, its result out (None is answered as {}).
OrderHandler = Handler
# What a call or notification on a closed link raises (an RpcError, reason `offline`).
LinkClosed = PeerClosed

# How much may wait for the master to read before senders wait too: one output batch (more
# only grows the worker: measured by test_ten_megabytes_fast_with_bounded_memory).
SEND_QUEUE_BYTES = 64 * 1024


class MasterLink(RpcTransport):
    spawn_requests = True
    internal_error_message = "{method} failed on the agent"

    def __init__(
        self,
        sock: socket.socket,
        handlers: Mapping[str, OrderHandler],
        *,
        name: str = "master",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        super().__init__(
            sock,
            name=name,
            handlers=handlers,
            max_line_bytes=max_line_bytes,
            send_queue_bytes=SEND_QUEUE_BYTES,
            overflow=Overflow.WAIT,
        )

    def handle_request(self, request: Request) -> Any:
        result = super().handle_request(request)
        return {} if result is None else result
