import pytest

from memstore.commerce.errors import CurrencyError, IllegalTransitionError
from memstore.commerce.money import Money, format_money
from memstore.commerce.states import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    check_transition,
)


def test_money_refuses_floats_and_unknown_currencies():
    with pytest.raises(CurrencyError):
        Money(19.99, "EUR")  # type: ignore[arg-type]
    with pytest.raises(CurrencyError):
        Money(True, "EUR")  # type: ignore[arg-type]
    with pytest.raises(CurrencyError):
        Money(100, "XXX")


def test_money_arithmetic_keeps_one_currency():
    assert Money(150, "EUR") + Money(50, "EUR") == Money(200, "EUR")
    assert Money(150, "EUR") - Money(50, "EUR") == Money(100, "EUR")
    assert -Money(5, "USD") == Money(-5, "USD")
    with pytest.raises(CurrencyError):
        Money(1, "EUR") + Money(1, "USD")


@pytest.mark.parametrize(
    ("amount", "bps", "fee"),
    [
        (1000, 1000, 100),
        (999, 1000, 100),
        (994, 1000, 99),
        (995, 1000, 100),
        (1, 1000, 0),
        (0, 1000, 0),
    ],
)
def test_fee_rounds_half_up_in_minor_units(amount, bps, fee):
    assert Money(amount, "EUR").fraction_bps(bps).amount_minor == fee


def test_format_money():
    assert format_money(1999, "EUR") == "€19.99"
    assert format_money(123456, "USD") == "$1,234.56"
    assert format_money(500, "JPY") == "¥500"
    assert format_money(1050, "CHF") == "10.50 CHF"
    assert format_money(0, "") == "Free"
    assert format_money(-250, "GBP") == "-£2.50"


def test_every_state_has_a_row_in_its_table():
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    assert set(PAYMENT_TRANSITIONS) == set(PaymentStatus)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("pending", "paid"),
        ("pending", "cancelled"),
        ("paid", "refunded"),
    ],
)
def test_legal_order_moves_pass(current, target):
    check_transition(ORDER_TRANSITIONS, current, target, what="order")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("paid", "pending"),
        ("paid", "cancelled"),
        ("cancelled", "paid"),
        ("refunded", "paid"),
        ("pending", "refunded"),
        ("pending", "pending"),
    ],
)
def test_illegal_order_moves_raise_with_the_allowed_targets(current, target):
    with pytest.raises(IllegalTransitionError) as info:
        check_transition(ORDER_TRANSITIONS, current, target, what="order")
    assert info.value.code == "commerce.illegal_transition"
    assert info.value.detail["from"] == current
    assert info.value.detail["allowed"] == sorted(ORDER_TRANSITIONS[OrderStatus(current)])


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        ("pending", "succeeded", True),
        ("pending", "failed", True),
        ("failed", "succeeded", True),
        ("failed", "failed", True),
        ("succeeded", "refunded", True),
        ("declined", "succeeded", False),
        ("succeeded", "failed", False),
        ("refunded", "succeeded", False),
        ("pending", "refunded", False),
    ],
)
def test_payment_moves(current, target, ok):
    if ok:
        check_transition(PAYMENT_TRANSITIONS, current, target, what="payment")
    else:
        with pytest.raises(IllegalTransitionError):
            check_transition(PAYMENT_TRANSITIONS, current, target, what="payment")
