"""Open a board's raw REPL with mpremote's transport (serial port, socket://, rfc2217://)."""

from __future__ import annotations

import socket
from typing import Any


def open_raw_repl(port: str, soft_reset: bool = True) -> Any:
    """An mpremote SerialTransport in raw REPL mode (raises TransportError/OSError).

    For socket:// URLs (virtual boards) Nagle's algorithm is switched off: mpremote writes a
    command and then a lone Ctrl-D, which would otherwise wait for a delayed ACK (~40 ms) on
    every exec.
    """
    from mpremote.transport_serial import SerialTransport

    t = SerialTransport(port, baudrate=115200)
    sock = getattr(t.serial, "_socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    t.enter_raw_repl(soft_reset=soft_reset)
    return t
