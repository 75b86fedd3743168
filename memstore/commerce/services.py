"""Writes of the commerce app: orders, charges, refunds, free claims, the ledger.

Every function is atomic and idempotent:

* ``order_create`` — one order per (buyer, idempotency key): a double submit of
  the checkout form creates one order (unique constraint; the loser of a race
  reads the winner's row).
* ``payment_capture`` — locks the order row (``SELECT ... FOR UPDATE``) for the
  whole charge, so two concurrent submits are serialised; a payment is unique
  per idempotency key and at most one payment per order can be captured. The
  provider gets the same key on every retry, so it cannot charge twice either.
* ``order_refund`` — refunds through the provider that charged, revokes the
  entitlements, writes negative ledger entries; a second call is a no-op.
* ``free_pack_claim`` — a zero-amount order, paid at once, granting the pack.

Not here: reads (``selectors``), HTTP or forms (``frontend``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..accounts.models import Role, User
from ..accounts.selectors import has_role
from ..packs.models import Pack, PackVersion
from . import _registry
from .conf import charge_attempts, charge_backoff_s, platform_fee_bps
from .errors import (
    AlreadyOwnedError,
    CurrencyError,
    NotPurchasableError,
    RefundNotAllowedError,
)
from .models import LedgerEntry, Order, OrderLine, Payment, Refund
from .money import Money
from .providers import (
    ChargeOutcome,
    ChargeRequest,
    PaymentProvider,
    ProviderError,
    RefundRequest,
    get_provider,
)
from .states import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    check_transition,
)

__all__ = [
    "free_pack_claim",
    "order_cancel",
    "order_create",
    "order_refund",
    "payment_capture",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------- transitions


def _order_transition(order: Order, target: OrderStatus) -> None:
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


def _payment_transition(payment: Payment, target: PaymentStatus, **fields: object) -> None:
    check_transition(PAYMENT_TRANSITIONS, payment.status, target, what="payment")
    payment.status = target.value
    payment.updated_at = timezone.now()
    for name, value in fields.items():
        setattr(payment, name, value)
    payment.save(update_fields=["status", "updated_at", *fields])


# --------------------------------------------------------------------- orders


def _purchasable(*, buyer: User, pack: Pack) -> PackVersion:
    if pack.private:
        raise NotPurchasableError(f"{pack.full_name} is private", detail={"pack": pack.full_name})
    version = _registry.current_version(pack)
    if version is None:
        raise NotPurchasableError(
            f"{pack.full_name} has no version to buy", detail={"pack": pack.full_name}
        )
    if has_role(user=buyer, namespace=pack.namespace, at_least=Role.MEMBER):
        raise NotPurchasableError(
            f"members of {pack.namespace.name} have access to {pack.full_name} already",
            detail={"pack": pack.full_name},
        )
    if _registry.entitlement_active(user=buyer, pack=pack) is not None:
        raise AlreadyOwnedError(
            f"you already own {pack.full_name}", detail={"pack": pack.full_name}
        )
    return version


def order_create(*, buyer: User, packs: Sequence[Pack], idempotency_key: str) -> Order:
    """A pending order for ``packs`` (all priced in one currency), once per key."""
    if not idempotency_key or len(idempotency_key) > 100:
        raise ValueError("an idempotency key of 1 to 100 characters is required")
    existing = Order.objects.filter(buyer=buyer, idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    if not packs:
        raise NotPurchasableError("an order needs at least one pack")
    lines: list[tuple[Pack, PackVersion]] = []
    for pack in dict.fromkeys(packs):  # de-duplicated, order kept
        lines.append((pack, _purchasable(buyer=buyer, pack=pack)))
    currencies = {v.price_currency for _, v in lines if v.price_amount_minor > 0}
    if len(currencies) > 1:
        raise CurrencyError(
            "all packs of an order must be priced in one currency",
            detail={"currencies": sorted(currencies)},
        )
    currency = currencies.pop() if currencies else ""
    total = sum(v.price_amount_minor for _, v in lines)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                buyer=buyer, idempotency_key=idempotency_key, currency=currency, total_minor=total
            )
            for pack, version in lines:
                OrderLine.objects.create(
                    order=order,
                    pack=pack,
                    version=version,
                    publisher=pack.namespace,
                    description=f"{pack.full_name}@{version.version}",
                    unit_price_minor=version.price_amount_minor,
                    currency=version.price_currency if version.price_amount_minor else "",
                )
    except IntegrityError:
        # A concurrent submit with the same key won the race: use its order.
        return Order.objects.get(buyer=buyer, idempotency_key=idempotency_key)
    return order


@transaction.atomic
def order_cancel(*, order: Order) -> Order:
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status != OrderStatus.CANCELLED:
        _order_transition(order, OrderStatus.CANCELLED)
    return order


def _fulfil(order: Order) -> None:
    """Mark paid, grant every line's entitlement, write the sale ledger entries."""
    _order_transition(order, OrderStatus.PAID)
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


# --------------------------------------------------------------------- payments


def payment_capture(
    *,
    order: Order,
    payment_method: str,
    idempotency_key: str,
    provider: PaymentProvider | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Payment:
    """Charge ``order`` once. Returns the payment; look at its ``status``.

    ``succeeded``: the order is paid and entitled. ``declined``: final for this
    key; the order stays pending (pay again with another card and a new key).
    ``failed``: transient errors outlasted the retries; submitting the same key
    again tries again. A repeated key, or any key once the order is paid,
    returns the existing payment without charging. If the buyer came to own a
    pack of the order through another order meanwhile, the order is cancelled
    and :class:`AlreadyOwnedError` raised, without charging.
    """
    provider = provider or get_provider()
    with transaction.atomic():
        # Lock order: buyer, then order. Locking the buyer serialises their charges, so two
        # orders for the same pack (two tabs) can never both be paid.
        User.objects.select_for_update().filter(pk=order.buyer_id).first()
        order = Order.objects.select_for_update().get(pk=order.pk)
        payment = Payment.objects.filter(idempotency_key=idempotency_key).first()
        if payment is not None:
            if payment.order_id != order.pk:
                raise ValueError("this idempotency key belongs to another order")
            if payment.status != PaymentStatus.FAILED:
                return payment  # the double submit: same answer, no new charge
        captured = order.payments.filter(
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED]
        ).first()
        if captured is not None:
            return captured
        check_transition(ORDER_TRANSITIONS, order.status, OrderStatus.PAID, what="order")
        if order.total_minor <= 0:
            raise NotPurchasableError("a free order needs no payment; claim it instead")
        owned = [
            line.description
            for line in order.lines.select_related("pack")
            if _registry.entitlement_active(user=order.buyer, pack=line.pack) is not None
        ]
        if not owned:
            if payment is None:
                payment = Payment.objects.create(
                    order=order,
                    provider=provider.name,
                    amount_minor=order.total_minor,
                    currency=order.currency,
                    idempotency_key=idempotency_key,
                )
            _charge_with_retries(order, payment, provider, payment_method, sleep)
            if payment.status == PaymentStatus.SUCCEEDED:
                _fulfil(order)
            return payment
        # Bought meanwhile through another order (another tab): never charge twice for it.
        _order_transition(order, OrderStatus.CANCELLED)
    raise AlreadyOwnedError(
        f"you already own {', '.join(owned)}; this order was cancelled",
        detail={"packs": owned, "order": str(order.public_id)},
    )


def _charge_with_retries(
    order: Order,
    payment: Payment,
    provider: PaymentProvider,
    payment_method: str,
    sleep: Callable[[float], None],
) -> None:
    attempts = charge_attempts()
    delay = charge_backoff_s()
    for i in range(attempts):
        if i:
            sleep(delay)
            delay *= 2
        payment.attempts += 1
        request = ChargeRequest(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            payment_method=payment_method,
            idempotency_key=payment.idempotency_key,
            description=f"MemStore order {order.public_id}",
            attempt=payment.attempts,
            metadata={"order": str(order.public_id)},
        )
        try:
            result = provider.charge(request)
        except ProviderError as exc:
            log.warning("payment %s: provider error: %s", payment.idempotency_key, exc)
            outcome, code, message = ChargeOutcome.TRANSIENT_FAILURE, exc.code, str(exc)
            brand = last4 = reference = ""
        else:
            outcome, code, message = result.outcome, result.error_code, result.error_message
            brand, last4, reference = result.card_brand, result.card_last4, result.reference
        common = {
            "attempts": payment.attempts,
            "card_brand": brand or payment.card_brand,
            "card_last4": last4 or payment.card_last4,
            "error_code": code,
            "error_message": message[:300],
        }
        if outcome is ChargeOutcome.SUCCEEDED:
            _payment_transition(payment, PaymentStatus.SUCCEEDED, reference=reference, **common)
            return
        if outcome is ChargeOutcome.DECLINED:
            _payment_transition(payment, PaymentStatus.DECLINED, **common)
            return
        _payment_transition(payment, PaymentStatus.FAILED, **common)


# --------------------------------------------------------------------- refunds


def _may_refund(actor: User, order: Order) -> bool:
    if actor.is_staff:
        return True
    return all(
        has_role(user=actor, namespace=line.publisher, at_least=Role.MAINTAINER)
        for line in order.lines.select_related("publisher")
    )


def order_refund(
    *, order: Order, actor: User, reason: str = "", provider: PaymentProvider | None = None
) -> Refund:
    """Refund a paid order in full and revoke what it granted. Idempotent."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if not _may_refund(actor, order):
            raise RefundNotAllowedError("only staff or the publisher can refund this order")
        payment = order.payments.filter(
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED]
        ).first()
        if payment is None:
            raise RefundNotAllowedError(
                "this order has no captured payment to refund", detail={"status": order.status}
            )
        existing = payment.refunds.first()
        if existing is not None:
            return existing
        check_transition(ORDER_TRANSITIONS, order.status, OrderStatus.REFUNDED, what="order")
        provider = provider or get_provider(payment.provider)
        key = f"refund:{payment.idempotency_key}"
        result = provider.refund(
            RefundRequest(
                charge_reference=payment.reference,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                idempotency_key=key,
                reason=reason,
            )
        )
        refund = Refund.objects.create(
            payment=payment,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            reason=reason[:500],
            idempotency_key=key,
            reference=result.reference,
            created_by=actor,
        )
        _payment_transition(payment, PaymentStatus.REFUNDED)
        _order_transition(order, OrderStatus.REFUNDED)
        for line in order.lines.select_related("pack"):
            _registry.entitlement_revoke(user=order.buyer, pack=line.pack)
            sale = line.ledger.filter(kind=LedgerEntry.Kind.SALE).first()
            if sale is not None:
                LedgerEntry.objects.create(
                    publisher_id=sale.publisher_id,
                    order_line=line,
                    kind=LedgerEntry.Kind.REFUND,
                    gross_minor=-sale.gross_minor,
                    fee_minor=-sale.fee_minor,
                    net_minor=-sale.net_minor,
                    currency=sale.currency,
                )
        return refund


# --------------------------------------------------------------------- free packs


def free_pack_claim(*, user: User, pack: Pack) -> Order:
    """Add a free pack to ``user``'s library in one step (a paid zero-amount order)."""
    key = f"free:{pack.pk}"
    with transaction.atomic():
        existing = (
            Order.objects.select_for_update()
            .filter(buyer=user, idempotency_key=key, status=OrderStatus.PAID)
            .first()
        )
        if existing is not None and _registry.entitlement_active(user=user, pack=pack):
            return existing
        version = _purchasable(buyer=user, pack=pack)
        if version.price_amount_minor > 0:
            raise NotPurchasableError(
                f"{pack.full_name} is not free", detail={"pack": pack.full_name}
            )
        order = order_create(buyer=user, packs=[pack], idempotency_key=key)
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status == OrderStatus.PENDING:
            _fulfil(order)
        return order
