"""Django's own HTTP servers (``runserver``, the test live server) with Nagle's algorithm off.

Django's development server writes a response's status line, headers and body
as separate ``send`` calls. With Nagle's algorithm on, the last small write
waits until the client acknowledges the first, and a client that delays its
ACK (Linux: ~40 ms) holds every keep-alive response back: measured 44 ms per
JSON request against 0.8 ms with ``TCP_NODELAY``. ``memos install`` makes
about eight such requests, and the live-server tests thousands. gunicorn (the
production server) already sets ``TCP_NODELAY`` on its sockets; these classes
do the same for the servers Django starts.

Not here: anything about what the server serves.
"""

from __future__ import annotations

import socket
from contextlib import suppress
from typing import Any

from django.core.management.commands import runserver
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIServer

__all__ = ["NoDelayRunserver", "NoDelayThreadedWSGIServer", "NoDelayWSGIServer"]


def _no_delay(request: Any) -> Any:
    connection, address = request
    with suppress(OSError):  # not TCP (a Unix socket): nothing to turn off
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection, address


class NoDelayWSGIServer(WSGIServer):
    """``runserver``'s server class: each accepted connection gets ``TCP_NODELAY``."""

    def get_request(self) -> Any:
        return _no_delay(super().get_request())


class NoDelayThreadedWSGIServer(ThreadedWSGIServer):
    """The live test server's class (``LiveServerThread.server_class``), with ``TCP_NODELAY``."""

    def get_request(self) -> Any:
        return _no_delay(super().get_request())


class NoDelayRunserver(runserver.Command):
    """``runserver`` on :class:`NoDelayWSGIServer` (``call_command`` accepts the instance)."""

    server_cls = NoDelayWSGIServer
