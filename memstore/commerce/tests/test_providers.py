import pytest

from memstore.commerce.providers import (
    CARD_DECLINED,
    CARD_SUCCESS,
    CARD_TRANSIENT,
    ChargeOutcome,
    ChargeRequest,
    ProviderError,
    RefundRequest,
    StripeProvider,
    TestProvider,
    get_provider,
)
from memstore.commerce.providers.test import CARD_INSUFFICIENT_FUNDS, luhn_ok


def charge(card, *, key="k1", attempt=1, provider=None):
    provider = provider or TestProvider()
    return provider.charge(
        ChargeRequest(
            amount_minor=500,
            currency="EUR",
            payment_method=card,
            idempotency_key=key,
            attempt=attempt,
        )
    )


def test_success_card_succeeds_with_a_reference_derived_from_the_key():
    first = charge("4242 4242 4242 4242")
    again = charge(CARD_SUCCESS)
    other = charge(CARD_SUCCESS, key="k2")
    assert first.outcome is ChargeOutcome.SUCCEEDED
    assert first.reference.startswith("ch_test_")
    assert first.reference == again.reference != other.reference
    assert (first.card_brand, first.card_last4) == ("visa", "4242")


def test_declined_card_is_declined_on_every_attempt():
    for attempt in (1, 2, 3):
        result = charge(CARD_DECLINED, attempt=attempt)
        assert result.outcome is ChargeOutcome.DECLINED
        assert result.error_code == "card_declined"
        assert result.reference == ""


def test_transient_card_fails_first_then_succeeds_on_retry():
    assert charge(CARD_TRANSIENT, attempt=1).outcome is ChargeOutcome.TRANSIENT_FAILURE
    assert charge(CARD_TRANSIENT, attempt=2).outcome is ChargeOutcome.SUCCEEDED


def test_other_cards_are_declined_with_a_reason():
    assert charge(CARD_INSUFFICIENT_FUNDS).error_code == "insufficient_funds"
    assert charge("4111111111111111").error_code == "card_not_supported"
    assert charge("4242424242424241").error_code == "invalid_number"
    assert charge("not a card").error_code == "invalid_number"


@pytest.mark.parametrize(
    ("number", "ok"),
    [(CARD_SUCCESS, True), (CARD_DECLINED, True), ("1234", False), ("4242424242424243", False)],
)
def test_luhn(number, ok):
    assert luhn_ok(number) is ok


def test_test_provider_refunds_idempotently():
    request = RefundRequest(
        charge_reference="ch_x", amount_minor=5, currency="EUR", idempotency_key="r1"
    )
    assert TestProvider().refund(request) == TestProvider().refund(request)


def test_stripe_without_a_secret_key_never_pretends_to_charge(settings):
    settings.MEMSTORE_STRIPE_SECRET_KEY = ""
    with pytest.raises(ProviderError):
        get_provider("stripe")


def test_get_provider_follows_the_setting(settings):
    settings.MEMSTORE_PAYMENT_PROVIDER = "test"
    assert isinstance(get_provider(), TestProvider)
    settings.MEMSTORE_PAYMENT_PROVIDER = "stripe"
    settings.MEMSTORE_STRIPE_SECRET_KEY = "sk_test_unit"
    assert isinstance(get_provider(), StripeProvider)
    with pytest.raises(ValueError):
        get_provider("bitcoin")


def test_without_configuration_the_provider_is_stripe_never_the_sandbox(settings):
    from memstore.commerce.conf import payment_provider

    settings.MEMSTORE_PAYMENT_PROVIDER = ""
    assert payment_provider() == "stripe"
    del settings.MEMSTORE_PAYMENT_PROVIDER
    assert payment_provider() == "stripe"
