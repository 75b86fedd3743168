"""System checks of the payment settings (``manage.py check --deploy`` runs them).

The sandbox provider takes any 4242 card as payment: with DEBUG off it is an
error (``commerce.E001``), and Stripe without its keys is another (``E002``).
Not here: reading the settings (``conf``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

from . import conf


@register(Tags.security, deploy=True)
def check_payment_provider(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    provider = conf.payment_provider()
    if provider == "test" and not settings.DEBUG:
        return [
            Error(
                "the sandbox payment provider gives packs away (card 4242 pays) and DEBUG is off",
                hint="set MEMSTORE_PAYMENT_PROVIDER=stripe and the MEMSTORE_STRIPE_* keys",
                id="commerce.E001",
            )
        ]
    if provider == "stripe" and not (conf.stripe_secret_key() and conf.stripe_webhook_secret()):
        return [
            Error(
                "Stripe payments need MEMSTORE_STRIPE_SECRET_KEY and "
                "MEMSTORE_STRIPE_WEBHOOK_SECRET",
                hint="see docker/README.md, 'Payments'",
                id="commerce.E002",
            )
        ]
    return []
