"""A board's raw REPL through mpremote's transport (serial port, socket://, rfc2217://): the one
place that talks to a board's Python and maps mpremote's errors to rocknet's."""

from __future__ import annotations

import socket
from typing import Any

from ..errors import ToolError

_BUSY = ("check the cable and that no other program (a serial monitor, mpremote repl) holds "
         "the port")


class ReplError(ToolError):
    """The board's REPL could not be reached or was lost."""


class BoardError(ToolError):
    """Code run on the board raised: ``stderr`` is its traceback, ``stdout`` what it printed
    before."""

    def __init__(self, message: str, stderr: str, stdout: str) -> None:
        super().__init__(message)
        self.stderr, self.stdout = stderr, stdout


class Repl:
    """One board's raw REPL. For socket:// URLs (virtual boards) Nagle's algorithm is switched
    off: mpremote writes a command and then a lone Ctrl-D, which would otherwise wait for a
    delayed ACK (~40 ms) on every exec."""

    def __init__(self, port: str, soft_reset: bool = True) -> None:
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.port = port
        try:
            t = SerialTransport(port, baudrate=115200)
            sock = getattr(t.serial, "_socket", None)
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            t.enter_raw_repl(soft_reset=soft_reset)
        except (TransportError, OSError) as exc:
            raise ReplError(f"{port}: cannot reach the board's REPL ({exc}); {_BUSY}") from None
        self.t: Any = t

    def exec(self, code: str, timeout: float = 60) -> str:
        """Run ``code``; its output. `BoardError` if it raised, `ReplError` if the link broke."""
        from mpremote.transport import TransportError

        try:
            out, err = self.t.exec_raw(code, timeout=timeout)
        except (TransportError, OSError) as exc:
            raise ReplError(f"{self.port}: connection lost ({exc})") from None
        if err:
            text = err.decode(errors="replace").strip()
            last = text.splitlines()[-1] if text else "no message"
            raise BoardError(f"{self.port}: board error: {last}", text,
                             out.decode(errors="replace"))
        return out.decode(errors="replace")

    def close(self) -> None:
        try:
            self.t.exit_raw_repl()
            self.t.close()
        except Exception:  # noqa: BLE001 - already gone
            pass
