"""Issue 13 item 7: a property test over the OpenAPI schema (schemathesis) finds no 5xx.

schemathesis reads drf-spectacular's schema from the WSGI app and, for every operation,
generates requests from it with hypothesis: valid ones and ones that break the schema
(wrong types, integers far past 64 bits, odd text), sent with a token that may read and
publish. The only check is ours: no answer of 500 or more. Bounded: :data:`EXAMPLES` per
operation, deterministic, so ``scripts/test`` runs it in well under a minute. Replaces the
hand-written hypothesis walk over the schema (same property, now by the tool made for it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from memstore.api.tests.clients import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

#: Requests per operation (valid and schema-breaking ones share them); scripts/test keeps
#: the default, a longer hunt sets MEMSTORE_SCHEMATHESIS_EXAMPLES.
EXAMPLES = int(os.environ.get("MEMSTORE_SCHEMATHESIS_EXAMPLES", "8"))
#: Binary chunk uploads (PUT/PATCH of raw bytes) are tested in memstore/packs.
SKIP_METHODS = ("PUT", "PATCH")

CONFIG = SchemathesisConfig.from_dict(
    {"generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True}}
)


@pytest.fixture
def wsgi_app(transactional_db: None) -> Iterator[Any]:
    """The site's WSGI app, called straight (as a server would, the requests commit: a
    test transaction around them would be closed by Django's end-of-request cleanup)."""
    from django.core import signals
    from django.core.wsgi import get_wsgi_application  # the site's, without naming server/
    from django.db import close_old_connections

    application = get_wsgi_application()

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app: Any) -> Any:
    return schemathesis.openapi.from_wsgi(
        "/api/v1/schema/?format=json", wsgi_app, config=CONFIG
    ).exclude(method=list(SKIP_METHODS))


@pytest.fixture
def token(alice: Any) -> str:
    from rest_framework.test import APIClient

    user = alice[0]
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    answer = APIClient().post(
        "/api/v1/auth/tokens",
        {"username": user.username, "password": PASSWORD, "scopes": ["read", "publish:acme"]},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    return str(answer.json()["token"])


def test_no_request_built_from_the_schema_gets_a_5xx(api_schema: Any, token: str) -> None:
    """Each operation in turn (schemathesis' pytest plugin needs pytest < 9, so the
    strategies are driven here): valid and schema-breaking requests, none may get a 5xx."""
    from hypothesis import strategies as st

    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20  # the schema really lists the API
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases)
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def no_server_error(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}"
            )

        no_server_error()
