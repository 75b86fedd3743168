"""The one exception handler answers every coded error of the registry, commerce's included."""

from __future__ import annotations

from memstore.api.errors import exception_handler
from memstore.commerce.errors import AlreadyOwnedError, CommerceError, IllegalTransitionError
from memstore.errors import RegistryError


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
