"""Django's own servers turn Nagle off for every connection they accept."""

from __future__ import annotations

import socket

import pytest
from django.test.testcases import LiveServerThread

from memstore.http.no_delay import (
    NoDelayRunserver,
    NoDelayThreadedWSGIServer,
    NoDelayWSGIServer,
)


@pytest.mark.parametrize("server_class", [NoDelayWSGIServer, NoDelayThreadedWSGIServer])
def test_accepted_connections_have_tcp_nodelay(server_class: type) -> None:
    server = server_class(("127.0.0.1", 0), None)
    try:
        with socket.create_connection(server.server_address[:2]) as client:
            connection, _ = server.get_request()
            try:
                flag = connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                assert flag != 0
                assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            finally:
                connection.close()
    finally:
        server.server_close()


def test_runserver_and_the_live_test_server_use_them() -> None:
    assert NoDelayRunserver.server_cls is NoDelayWSGIServer
    assert LiveServerThread.server_class is NoDelayThreadedWSGIServer  # set by the test plugin
