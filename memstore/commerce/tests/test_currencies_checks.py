"""ISO 4217 currencies at publish and in money; the deploy check that refuses the sandbox."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from memstore.commerce.checks import check_payment_provider
from memstore.commerce.errors import CurrencyError
from memstore.commerce.money import Money, format_money
from memstore.errors import InvalidRequestError
from memstore.packs.publishing import Price


@pytest.mark.parametrize("code", ["ZZZ", "XXX", "XAU", "DEM", "eur", "EU"])
def test_price_refuses_a_code_that_is_not_an_iso_currency_in_use(code):
    with pytest.raises(InvalidRequestError) as info:
        Price(amount_minor=500, currency=code)
    assert info.value.code == "registry.bad_currency"


@pytest.mark.parametrize(("code", "shown"), [("NOK", "5.00 NOK"), ("BHD", "0.500 BHD")])
def test_any_iso_currency_in_use_is_money_with_its_own_exponent(code, shown):
    assert Price(amount_minor=500, currency=code).currency == code
    assert Money(500, code).amount_minor == 500
    assert format_money(500, code) == shown


def test_money_refuses_zzz():
    with pytest.raises(CurrencyError):
        Money(1, "ZZZ")


def test_sandbox_with_debug_off_fails_the_deploy_check(settings):
    settings.DEBUG = False
    settings.MEMSTORE_PAYMENT_PROVIDER = "test"
    assert [e.id for e in check_payment_provider()] == ["commerce.E001"]
    with pytest.raises(SystemCheckError, match=r"commerce\.E001"):
        call_command("check", "--deploy", "--tag", "security")


def test_sandbox_with_debug_on_passes_the_payment_check(settings):
    settings.DEBUG = True
    settings.MEMSTORE_PAYMENT_PROVIDER = "test"
    assert check_payment_provider() == []


def test_stripe_without_keys_fails_the_deploy_check(settings):
    settings.MEMSTORE_PAYMENT_PROVIDER = "stripe"
    settings.MEMSTORE_STRIPE_SECRET_KEY = ""
    assert [e.id for e in check_payment_provider()] == ["commerce.E002"]
    settings.MEMSTORE_STRIPE_SECRET_KEY = "sk_test_x"
    settings.MEMSTORE_STRIPE_WEBHOOK_SECRET = "whsec_x"
    assert check_payment_provider() == []
