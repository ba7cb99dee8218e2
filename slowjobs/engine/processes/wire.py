"""Messages between a server process and its job processes: JSON lines.

Each message is one JSON object on one line of a socket pair, so nothing
that crosses the boundary is ever unpickled: a child can hand back only
data, never code.  Reads wait with ``select`` and a deadline, never on a
blocking read, so the server side can look for cancels between messages.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from typing import Any

Message = dict[str, Any]

# A larger line is a broken or hostile peer, not a message.
LINE_LIMIT = 64 * 1024 * 1024


class ChannelClosed(Exception):
    """The other end has gone (its process ended, or closed the socket)."""


class ChannelBroken(ChannelClosed):
    """The other end sent something that is not a message: it is treated as
    gone, as nothing it says can be trusted any more."""


class Channel:
    """One end of a socket pair, speaking JSON lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        # Several threads of one process may send (a reply, a cancel).
        self._send_lock = threading.Lock()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Message) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc

    def receive(self, timeout: float | None = None) -> Message | None:
        """The next message, or None if none came within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            line = self._take_line()
            if line is not None:
                try:
                    message = json.loads(line)
                except ValueError:
                    message = None
                if not isinstance(message, dict):
                    raise ChannelBroken(f"not a message: {line[:80]!r}")
                return message
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            readable, _, _ = select.select([self.sock], [], [], remaining)
            if not readable:
                return None
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc
            if not chunk:
                raise ChannelClosed("the other end closed the channel")
            self._buffer += chunk
            if len(self._buffer) > LINE_LIMIT:
                raise ChannelBroken("a message over the size limit")

    def _take_line(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    def close(self) -> None:
        self.sock.close()
