"""Closing a listening socket without resetting the connections queued on it.

``refuse_new_connections`` serves the graceful shutdown: closing a listening socket
resets every connection the kernel has already completed but nobody has accepted
yet, and those clients see a reset after sending their request. Dropping new SYNs
first (a one-instruction socket filter) lets the server accept and answer what is
queued before it closes the socket; later clients are refused.
"""

from __future__ import annotations

import ctypes
import socket
import struct

__all__ = ["refuse_new_connections"]

_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)  # Linux
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)  # classic BPF: BPF_RET | BPF_K, accept 0 bytes


def refuse_new_connections(sock: socket.socket) -> bool:
    """Make a listening socket drop new SYNs; connections already queued stay acceptable."""
    program = ctypes.create_string_buffer(_DROP_ALL)
    fprog = struct.pack("@HP", 1, ctypes.addressof(program))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False  # not Linux: the socket is simply closed, as uvicorn does
    return True
