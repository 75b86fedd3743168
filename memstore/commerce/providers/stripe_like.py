"""The adapter shape for a real card processor (Stripe-like). A skeleton: no network.

How our interface maps onto a Stripe-style API, for whoever wires a real one:

=============================  ============================================================
ours                           processor
=============================  ============================================================
``ChargeRequest.payment_method``  a PaymentMethod id (``pm_...``) created in the browser by
                               the processor's JS (card data never reaches our server)
``charge()``                   ``POST /v1/payment_intents`` with ``amount``, ``currency``
                               (lower case), ``payment_method``, ``confirm=true`` and the
                               header ``Idempotency-Key: <idempotency_key>``
``ChargeOutcome.SUCCEEDED``    intent ``status == "succeeded"``; ``reference`` = intent id
``ChargeOutcome.DECLINED``     HTTP 402 ``card_error`` (``decline_code`` -> ``error_code``)
``TRANSIENT_FAILURE``          HTTP 429/5xx, ``api_connection_error``, ``lock_timeout``:
                               retry with the *same* idempotency key
``requires_action`` (3-D S)    not supported by this shape yet: would need a redirect step
``refund()``                   ``POST /v1/refunds`` with ``payment_intent``, ``amount`` and
                               an ``Idempotency-Key``
webhooks                       ``charge.refunded`` / ``charge.dispute.created`` should call
                               ``services.order_refund`` (signature-checked endpoint)
=============================  ============================================================

The HTTP transport is injected (``send``) so tests can drive it with a fake
and production with ``httpx``; nothing here opens a connection by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .base import (
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    ProviderError,
    RefundRequest,
    RefundResult,
)

__all__ = ["StripeLikeProvider"]

#: ``send(method, path, form_fields, headers) -> (http_status, json_body)``
Transport = Callable[[str, str, Mapping[str, str], Mapping[str, str]], tuple[int, dict[str, Any]]]


class StripeLikeProvider(PaymentProvider):
    name = "stripe"

    def __init__(self, *, api_key: str, send: Transport | None = None) -> None:
        self._api_key = api_key
        self._send = send

    def _call(
        self, path: str, fields: Mapping[str, str], idempotency_key: str
    ) -> tuple[int, dict[str, Any]]:
        if self._send is None:
            raise ProviderError("no transport configured for the card processor")
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Idempotency-Key": idempotency_key,
        }
        return self._send("POST", path, fields, headers)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        fields = {
            "amount": str(request.amount_minor),
            "currency": request.currency.lower(),
            "payment_method": request.payment_method,
            "confirm": "true",
            "description": request.description,
        }
        for k, v in request.metadata.items():
            fields[f"metadata[{k}]"] = v
        status, body = self._call("/v1/payment_intents", fields, request.idempotency_key)
        if status == 200 and body.get("status") == "succeeded":
            card = (body.get("payment_method_details") or {}).get("card") or {}
            return ChargeResult(
                ChargeOutcome.SUCCEEDED,
                reference=str(body.get("id", "")),
                card_brand=str(card.get("brand", "")),
                card_last4=str(card.get("last4", "")),
            )
        error = body.get("error") or {}
        if status == 402 or error.get("type") == "card_error":
            return ChargeResult(
                ChargeOutcome.DECLINED,
                error_code=str(error.get("decline_code") or error.get("code") or "card_declined"),
                error_message=str(error.get("message", "The card was declined.")),
            )
        if status == 429 or status >= 500 or error.get("code") == "lock_timeout":
            return ChargeResult(
                ChargeOutcome.TRANSIENT_FAILURE,
                error_code=str(error.get("code") or f"http_{status}"),
                error_message=str(error.get("message", "temporary processor error")),
            )
        raise ProviderError(f"unexpected processor answer (HTTP {status})")

    def refund(self, request: RefundRequest) -> RefundResult:
        fields = {
            "payment_intent": request.charge_reference,
            "amount": str(request.amount_minor),
        }
        status, body = self._call("/v1/refunds", fields, request.idempotency_key)
        if status != 200:
            raise ProviderError(f"refund refused by the processor (HTTP {status})")
        return RefundResult(reference=str(body.get("id", "")))
