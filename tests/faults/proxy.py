"""A TCP proxy the test controls, to cut a worker off from the master without closing anything:
`cut()` drops every byte in both directions (the connection looks alive to both ends, as in a
network partition), `heal()` forwards again, `reset()` ends the partition as a broken network
often does: every connection through it is closed, new ones are forwarded. An end that closed
meanwhile is closed on the other side once healed. Threads and blocking sockets; 127.0.0.1
only."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class PartitionProxy:
    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.partitioned = threading.Event()
        self.dropped_bytes = 0
        self._resets = 0  # a pump ends when this moved past the value it started with
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def cut(self) -> None:
        self.partitioned.set()

    def heal(self) -> None:
        self.partitioned.clear()

    def reset(self) -> None:
        self._resets += 1
        self.partitioned.clear()

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                downstream.close()
                continue
            thread = threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, downstream: socket.socket, upstream: socket.socket) -> None:
        peer = {downstream: upstream, upstream: downstream}
        closed: set[socket.socket] = set()
        resets = self._resets
        try:
            while not self._closing.is_set() and self._resets == resets:
                if closed and not self.partitioned.is_set():
                    return  # one end left while cut off: the other learns it now
                open_ends = [end for end in peer if end not in closed]
                readable, _, _ = select.select(open_ends, [], [], 0.05)
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        closed.add(end)
                        if not self.partitioned.is_set():
                            return
                    elif self.partitioned.is_set():
                        self.dropped_bytes += len(data)
                    else:
                        peer[end].sendall(data)
        except OSError:
            return
        finally:
            for end in peer:
                with contextlib.suppress(OSError):
                    end.close()
