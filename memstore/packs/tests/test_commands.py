"""Management commands: memstore_createuser, and memstore_up's refusal of a busy port."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import CommandError, call_command

from memstore.accounts.models import Membership, Namespace, Role
from memstore.accounts.selectors import api_token_by_raw
from server.management.commands import memstore_up


@pytest.mark.django_db
def test_createuser_makes_the_user_its_namespace_and_a_working_token() -> None:
    out = io.StringIO()
    call_command(
        "memstore_createuser", "carol", "--password", "pw-Secret-123", "--token", stdout=out
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "created user carol with namespace carol"
    token = lines[1].removeprefix("token: ")
    namespace = Namespace.objects.get(name="carol")
    assert Membership.objects.get(namespace=namespace).role == Role.OWNER
    found = api_token_by_raw(token)
    assert found is not None and found.user.username == "carol"


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
