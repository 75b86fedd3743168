"""Settling payments after the card processor answered: fulfil exactly once.

A charge happens outside any database transaction (``services.payment_capture``
commits the order and a pending payment first). Whatever the processor says
later reaches :func:`payment_settle` (the checkout's own answer),
:func:`webhook_handle` (Stripe's signed events) or :func:`payments_reconcile`
(the beat task, for payments whose answer was lost to a crash). Each locks the
order and moves it only along the state tables, so a replayed webhook, a second
reconciliation or a race between them fulfils once: one entitlement, one
ledger entry per line.

Not here: charging (``services``), HTTP (``apis``), reads (``selectors``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import _registry
from .conf import platform_fee_bps, stripe_webhook_secret
from .models import LedgerEntry, Order, Payment
from .money import Money
from .providers import (
    ChargeOutcome,
    ChargeResult,
    PaymentProvider,
    ProviderError,
    get_provider,
    webhook_event,
)
from .states import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    check_transition,
)

__all__ = ["payment_settle", "payments_reconcile", "webhook_handle", "webhook_receive"]

log = logging.getLogger(__name__)

#: A pending payment younger than this may still be in the checkout's hands.
RECONCILE_AFTER = timedelta(minutes=5)


def order_transition(order: Order, target: OrderStatus) -> None:
    check_transition(ORDER_TRANSITIONS, order.status, target, what="order")
    now = timezone.now()
    order.status = target.value
    order.updated_at = now
    fields = ["status", "updated_at"]
    if target is OrderStatus.PAID:
        order.paid_at = now
        fields.append("paid_at")
    elif target is OrderStatus.REFUNDED:
        order.refunded_at = now
        fields.append("refunded_at")
    order.save(update_fields=fields)


def payment_transition(payment: Payment, target: PaymentStatus, **fields: object) -> None:
    check_transition(PAYMENT_TRANSITIONS, payment.status, target, what="payment")
    payment.status = target.value
    payment.updated_at = timezone.now()
    for name, value in fields.items():
        setattr(payment, name, value)
    payment.save(update_fields=["status", "updated_at", *fields])


def fulfil(order: Order) -> None:
    """Mark paid, grant every line's entitlement, write the sale ledger entries."""
    order_transition(order, OrderStatus.PAID)
    fee_bps = platform_fee_bps()
    for line in order.lines.select_related("pack"):
        line.entitlement = _registry.entitlement_grant(
            user=order.buyer,
            pack=line.pack,
            source="purchase" if order.total_minor > 0 else "free",
            reference=f"order:{order.public_id}:{line.pack_id}",
        )
        line.save(update_fields=["entitlement"])
        if line.unit_price_minor > 0:
            gross = Money(line.unit_price_minor, line.currency)
            fee = gross.fraction_bps(fee_bps)
            LedgerEntry.objects.create(
                publisher_id=line.publisher_id,
                order_line=line,
                kind=LedgerEntry.Kind.SALE,
                gross_minor=gross.amount_minor,
                fee_minor=fee.amount_minor,
                net_minor=(gross - fee).amount_minor,
                currency=line.currency,
            )


def apply_result(payment: Payment, result: ChargeResult, **fields: object) -> None:
    """Record the processor's answer on ``payment`` (a no-op once it is final)."""
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        return
    common: dict[str, object] = {
        "card_brand": result.card_brand or payment.card_brand,
        "card_last4": result.card_last4 or payment.card_last4,
        "error_code": result.error_code,
        "error_message": result.error_message[:300],
        "reference": result.reference or payment.reference,
        **fields,
    }
    target = {
        ChargeOutcome.SUCCEEDED: PaymentStatus.SUCCEEDED,
        ChargeOutcome.DECLINED: PaymentStatus.DECLINED,
    }.get(result.outcome, PaymentStatus.FAILED)
    payment_transition(payment, target, **common)


def payment_settle(*, payment: Payment) -> Payment:
    """Fulfil ``payment``'s order if the payment succeeded and the order is not yet paid."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment = Payment.objects.get(pk=payment.pk)
        if payment.status == PaymentStatus.SUCCEEDED and order.status == OrderStatus.PENDING:
            fulfil(order)
        return payment


def _settle_with(payment: Payment, result: ChargeResult | None) -> bool:
    """Apply ``result`` under the order's lock and fulfil; True if the order became paid."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if result is not None:
            apply_result(payment, result)
        if payment.status == PaymentStatus.SUCCEEDED and order.status == OrderStatus.PENDING:
            fulfil(order)
            return True
        return False


def payments_reconcile(
    *, provider: PaymentProvider | None = None, older_than: timedelta = RECONCILE_AFTER
) -> int:
    """Settle payments left pending (or succeeded but unfulfilled). Returns how many orders
    became paid. Safe to run any number of times, concurrently too."""
    cutoff = timezone.now() - older_than
    paid = 0
    stale = Payment.objects.filter(status=PaymentStatus.PENDING, updated_at__lt=cutoff)
    for payment in stale.order_by("id"):
        chosen = provider or get_provider(payment.provider)
        try:
            result = chosen.retrieve(payment.reference) if payment.reference else None
        except ProviderError as exc:
            log.warning("reconcile %s: %s", payment.idempotency_key, exc)
            continue
        if result is None:  # nothing confirmed at the processor: the buyer may pay again
            result = ChargeResult(
                ChargeOutcome.TRANSIENT_FAILURE,
                error_code="abandoned",
                error_message="The checkout stopped before the processor answered.",
            )
        paid += _settle_with(payment, result)
    unfulfilled = Payment.objects.filter(
        status=PaymentStatus.SUCCEEDED, order__status=OrderStatus.PENDING
    )
    for payment in unfulfilled.order_by("id"):
        paid += _settle_with(payment, None)
    return paid


def webhook_receive(*, payload: bytes, signature: str) -> str:
    """Verify a Stripe webhook with the configured signing secret, then apply it."""
    event = webhook_event(payload=payload, signature=signature, secret=stripe_webhook_secret())
    return webhook_handle(event=event)


def webhook_handle(*, event: dict[str, Any]) -> str:
    """Apply a verified Stripe event; returns what happened (``fulfilled``, ``ignored``...)."""
    kind = str(event.get("type", ""))
    if kind not in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        return "ignored"
    intent = (event.get("data") or {}).get("object") or {}
    payment = Payment.objects.filter(provider="stripe", reference=str(intent.get("id", ""))).first()
    if payment is None:
        return "unknown_payment"
    if kind == "payment_intent.succeeded":
        result = ChargeResult(ChargeOutcome.SUCCEEDED, reference=payment.reference)
    else:
        error = intent.get("last_payment_error") or {}
        result = ChargeResult(
            ChargeOutcome.DECLINED,
            reference=payment.reference,
            error_code=str(error.get("code") or "card_declined"),
            error_message=str(error.get("message") or "The card was declined."),
        )
    return "fulfilled" if _settle_with(payment, result) else "no_change"
