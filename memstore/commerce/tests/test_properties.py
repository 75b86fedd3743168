"""Property tests where commerce parses outside data (card numbers, amounts)."""

from hypothesis import given
from hypothesis import strategies as st

from memstore.commerce.money import CURRENCY_EXPONENTS, Money, format_money
from memstore.commerce.providers import ChargeOutcome, ChargeRequest, TestProvider

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@given(
    st.text(max_size=40), st.integers(min_value=1, max_value=5), st.text(min_size=1, max_size=20)
)
def test_the_test_provider_never_raises_and_is_deterministic(card, attempt, key):
    request = ChargeRequest(
        amount_minor=100, currency="EUR", payment_method=card, idempotency_key=key, attempt=attempt
    )
    first, again = TestProvider().charge(request), TestProvider().charge(request)
    assert first == again
    assert first.outcome in set(ChargeOutcome)
    assert (first.outcome is ChargeOutcome.SUCCEEDED) == bool(first.reference)


@given(st.integers(min_value=-(10**12), max_value=10**12), currencies)
def test_format_money_shows_every_minor_unit(amount, currency):
    text = format_money(amount, currency)
    if amount == 0:
        assert text == "Free"
    else:
        digits = "".join(ch for ch in text if ch.isdigit())
        assert int(digits) == abs(amount)
        assert text.startswith("-") == (amount < 0)


@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=10_000),
    currencies,
)
def test_fee_is_between_zero_and_the_amount(amount, bps, currency):
    fee = Money(amount, currency).fraction_bps(bps)
    assert 0 <= fee.amount_minor <= amount
    assert (Money(amount, currency) - fee).amount_minor >= 0
