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


def test_banner_links_only_the_demo_packs_that_were_seeded() -> None:
    base = "http://127.0.0.1:8000"
    text_only = memstore_up._demo_pack_lines(
        base, ["demo/python-stdlib@1.0.0", "demo/python-tips@1.0.0"]
    )
    assert "/p/demo/python-stdlib " in text_only
    assert "python-stdlib-kv" not in text_only and "python-text-lora" not in text_only
    everything = memstore_up._demo_pack_lines(
        base,
        ["demo/python-stdlib@1.0.0", "demo/python-stdlib-kv@1.0.0", "demo/python-text-lora@1.0.0"],
    )
    assert everything.count("\n") == 3
    assert "/p/demo/python-stdlib-kv" in everything and "(LoRA adapter)" in everything
