"""The one exception handler answers every coded error of the registry, commerce's included."""

from __future__ import annotations

from typing import Any

import pytest

from memstore.api.errors import exception_handler
from memstore.commerce.errors import AlreadyOwnedError, CommerceError, IllegalTransitionError
from memstore.errors import RegistryError
from memstore.packs.tests.blobkit import token_client


def test_commerce_errors_are_registry_errors_with_stable_codes() -> None:
    error = AlreadyOwnedError("you already own acme/docs", detail={"pack": "acme/docs"})
    assert isinstance(error, CommerceError) and isinstance(error, RegistryError)
    assert error.to_dict() == {
        "code": "commerce.already_owned",
        "message": "you already own acme/docs",
        "detail": {"pack": "acme/docs"},
    }
    assert CommerceError("x").code == "commerce.error"


def test_the_handler_answers_a_commerce_error_with_its_code_and_status() -> None:
    response = exception_handler(
        IllegalTransitionError("order cannot go from paid to pending", detail={"from": "paid"}),
        {},
    )
    assert response.status_code == 409
    assert response.data == {
        "error": {
            "code": "commerce.illegal_transition",
            "message": "order cannot go from paid to pending",
            "detail": {"from": "paid"},
        }
    }


def test_a_database_that_is_away_is_a_503_that_says_retry() -> None:
    from django.db import OperationalError

    response = exception_handler(OperationalError("server closed the connection"), {})
    assert response.status_code == 503
    assert response.data["error"]["code"] == "registry.database_unavailable"
    assert response["Retry-After"] == "5"


@pytest.mark.django_db
def test_a_form_body_with_too_many_fields_is_a_400_not_a_500(alice: Any) -> None:
    """Django refuses more than DATA_UPLOAD_MAX_NUMBER_FIELDS form fields (found by schemathesis
    on blobs/missing); the refusal is the client's mistake, with a stable code."""
    body = "&".join(f"digests={i:064x}" for i in range(1500))
    answer = token_client(alice[0]).post(
        "/api/v1/blobs/missing", body, content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "registry.invalid_request"


def test_a_body_over_djangos_limit_is_a_413() -> None:
    from django.core.exceptions import RequestDataTooBig

    response = exception_handler(RequestDataTooBig("too big"), {})
    assert response.status_code == 413
    assert response.data["error"]["code"] == "registry.too_large"
