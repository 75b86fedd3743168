"""Stripe through its official SDK: PaymentIntents, refunds and signed webhooks.

``charge()`` creates a PaymentIntent (idempotency key = the payment's), hands
its id to ``on_reference`` (the service stores it before money moves) and then
confirms it (key + ``:confirm``): Stripe answers a repeated key with the first
result instead of charging again, and reconciliation can ``retrieve`` an
intent whose answer was lost. A decline (``CardError``) is a result;
rate limits, connection errors and Stripe's 5xx are transient (retry with the
same key); anything else is a :class:`ProviderError`. An intent that needs 3-D
Secure (``requires_action``) is declined with ``authentication_required``: the
server-side checkout has no redirect step yet.

Each provider holds its own ``StripeClient`` (key and API base from settings;
tests point the base at localstripe), so nothing global is changed and
nothing connects at import time.

Not here: which provider is used (``get_provider``), persistence, order logic.
"""

from __future__ import annotations

from typing import Any

import stripe

from ..errors import WebhookSignatureError
from .base import (
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    ProviderError,
    RefundRequest,
    RefundResult,
)

__all__ = ["StripeProvider", "WebhookSignatureError", "webhook_event"]


def webhook_event(*, payload: bytes, signature: str, secret: str) -> dict[str, Any]:
    """The event in ``payload`` once its signature is verified with ``secret``."""
    if not secret:
        raise WebhookSignatureError("no webhook signing secret is configured")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise WebhookSignatureError(f"webhook refused: {exc}") from exc
    result: dict[str, Any] = event.to_dict()
    return result


def _card(intent: dict[str, Any]) -> tuple[str, str]:
    charge = intent.get("latest_charge")
    details = charge.get("payment_method_details") if isinstance(charge, dict) else None
    card = (details or {}).get("card") or {}
    return str(card.get("brand") or ""), str(card.get("last4") or "")


class StripeProvider(PaymentProvider):
    name = "stripe"

    def __init__(self, *, api_key: str, api_base: str = "") -> None:
        if not api_key:
            raise ProviderError("MEMSTORE_STRIPE_SECRET_KEY is not set")
        base: dict[str, str] = {"api": api_base} if api_base else {}
        self._client = stripe.StripeClient(
            api_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=0,
        )

    def charge(self, request: ChargeRequest) -> ChargeResult:
        params: dict[str, Any] = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "payment_method": request.payment_method,
            "metadata": dict(request.metadata),
        }
        key = request.idempotency_key
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": key},
            )
            if request.on_reference is not None:
                request.on_reference(intent.id)
            intent = self._client.v1.payment_intents.confirm(
                intent.id,
                params={"expand": ["latest_charge"]},
                options={"idempotency_key": f"{key}:confirm"},
            )
        except stripe.CardError as exc:
            error = exc.error
            return ChargeResult(
                ChargeOutcome.DECLINED,
                error_code=str(
                    (error.decline_code if error else None)
                    or (error.code if error else None)
                    or "card_declined"
                ),
                error_message=str(exc.user_message or "The card was declined."),
            )
        except (stripe.RateLimitError, stripe.APIConnectionError) as exc:
            return ChargeResult(
                ChargeOutcome.TRANSIENT_FAILURE,
                error_code=str(exc.code or "processor_unavailable"),
                error_message=str(exc.user_message or "The processor is unavailable."),
            )
        except stripe.StripeError as exc:
            if (exc.http_status or 0) >= 500 or exc.code == "lock_timeout":
                return ChargeResult(
                    ChargeOutcome.TRANSIENT_FAILURE,
                    error_code=str(exc.code or f"http_{exc.http_status}"),
                    error_message="The processor had a temporary problem.",
                )
            raise ProviderError(f"Stripe refused the charge: {exc.user_message or exc}") from exc
        return self._result(intent.to_dict())

    def _result(self, intent: dict[str, Any]) -> ChargeResult:
        status, reference = str(intent.get("status")), str(intent.get("id"))
        brand, last4 = _card(intent)
        if status == "succeeded":
            return ChargeResult(
                ChargeOutcome.SUCCEEDED, reference=reference, card_brand=brand, card_last4=last4
            )
        if status == "requires_action":
            return ChargeResult(
                ChargeOutcome.DECLINED,
                reference=reference,
                error_code="authentication_required",
                error_message="This card needs 3-D Secure, which checkout does not support yet.",
            )
        if status == "processing":
            return ChargeResult(
                ChargeOutcome.TRANSIENT_FAILURE,
                reference=reference,
                error_code="processing",
                error_message="The payment is still processing.",
            )
        error = intent.get("last_payment_error") or {}
        return ChargeResult(
            ChargeOutcome.DECLINED,
            reference=reference,
            error_code=str(error.get("code") or status),
            error_message=str(error.get("message") or "The card was declined."),
        )

    def retrieve(self, reference: str) -> ChargeResult | None:
        if not reference:
            return None
        try:
            intent = self._client.v1.payment_intents.retrieve(
                reference, params={"expand": ["latest_charge"]}
            )
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe could not find {reference}: {exc}") from exc
        if intent.status == "requires_confirmation":  # created, never confirmed: no money moved
            return ChargeResult(
                ChargeOutcome.TRANSIENT_FAILURE,
                reference=reference,
                error_code="not_confirmed",
                error_message="The payment was never confirmed; pay again.",
            )
        return self._result(intent.to_dict())

    def refund(self, request: RefundRequest) -> RefundResult:
        try:
            refund = self._client.v1.refunds.create(
                params={"payment_intent": request.charge_reference, "amount": request.amount_minor},
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe refused the refund: {exc.user_message or exc}") from exc
        return RefundResult(reference=refund.id)
