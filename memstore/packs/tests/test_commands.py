"""Management commands of the registry: memstore_createuser (memstore_up: server/tests)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from memstore.accounts.models import Membership, Namespace, Role
from memstore.accounts.selectors import api_token_by_raw


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
