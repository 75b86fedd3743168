"""``manage.py memstore_up`` refuses a busy port before it touches anything."""

from __future__ import annotations

import socket

import pytest
from django.core.management import CommandError, call_command

from server.management.commands import memstore_up


def test_up_refuses_a_busy_port_before_touching_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    # The command installs process-wide signal handlers; not in the test process.
    monkeypatch.setattr(memstore_up.signal, "signal", lambda *args: None)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not memstore_up._port_free("127.0.0.1", port)
        with pytest.raises(CommandError, match="already in use"):
            call_command("memstore_up", "--addrport", f"127.0.0.1:{port}")
    assert memstore_up._port_free("127.0.0.1", port)
