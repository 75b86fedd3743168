"""Writes of the commerce app: orders, charges, refunds, free claims, the ledger.

Every function is atomic and idempotent:

* ``order_create`` — one order per (buyer, idempotency key): a double submit of
  the checkout form creates one order (unique constraint; the loser of a race
  reads the winner's row).
* ``payment_capture`` — commits the order's pending payment under the buyer's
  and the order's locks (one charge in flight per order; a payment is unique
  per idempotency key), charges *outside* any transaction with that key (the
  provider gets the same key on every retry, so it cannot charge twice), and
  fulfils on the answer; ``settlement`` settles what a crash left pending.
* ``order_refund`` — refunds through the provider that charged, revokes the
  entitlements, writes negative ledger entries; a second call is a no-op.
* ``free_pack_claim`` — a zero-amount order, paid at once, granting the pack.

Not here: reads (``selectors``), HTTP or forms (``frontend``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from ..accounts.models import Role, User
from ..accounts.selectors import has_role
from ..packs.models import Pack, PackVersion
from . import _registry
from .conf import charge_attempts, charge_backoff_s
from .errors import (
    AlreadyOwnedError,
    CurrencyError,
    NotPurchasableError,
    PaymentInProgressError,
    RefundNotAllowedError,
)
from .models import LedgerEntry, Order, OrderLine, Payment, Refund
from .providers import (
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    ProviderError,
    RefundRequest,
    get_provider,
)
from .settlement import (
    apply_result,
    fulfil,
    order_transition,
    payment_settle,
    payment_transition,
    payments_reconcile,
    webhook_handle,
    webhook_receive,
)
from .states import (
    ORDER_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    check_transition,
)

__all__ = [
    "CaptureHooks",
    "free_pack_claim",
    "order_cancel",
    "order_create",
    "order_refund",
    "payment_capture",
    "payment_settle",
    "payments_reconcile",
    "webhook_handle",
    "webhook_receive",
]

log = logging.getLogger(__name__)


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
        order_transition(order, OrderStatus.CANCELLED)
    return order


# --------------------------------------------------------------------- payments


@dataclass(frozen=True)
class CaptureHooks:
    """Points where a test can stop ``payment_capture`` as a crash would (our interface)."""

    after_reference: Callable[[Payment], None] = lambda payment: None
    after_charge: Callable[[Payment], None] = lambda payment: None


def _payment_open(
    *, order: Order, idempotency_key: str, provider: PaymentProvider
) -> tuple[Payment, bool]:
    """Commit a pending payment for ``order`` (or find the one that answers this submit).

    Returns ``(payment, charge)``: ``charge`` is False when nothing must be charged.
    """
    with transaction.atomic():
        # Lock order: buyer, then order. Locking the buyer serialises their checkouts, so two
        # orders for the same pack (two tabs) can never both be paid.
        User.objects.select_for_update().filter(pk=order.buyer_id).first()
        order = Order.objects.select_for_update().get(pk=order.pk)
        payment = Payment.objects.filter(idempotency_key=idempotency_key).first()
        if payment is not None:
            if payment.order_id != order.pk:
                raise ValueError("this idempotency key belongs to another order")
            if payment.status != PaymentStatus.FAILED:
                return payment, False  # the double submit: same answer, no new charge
        settled = order.payments.filter(
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED, PaymentStatus.PENDING]
        ).first()
        if settled is not None:
            return settled, False  # paid, or a charge in flight (another submit, a crash)
        check_transition(ORDER_TRANSITIONS, order.status, OrderStatus.PAID, what="order")
        if order.total_minor <= 0:
            raise NotPurchasableError("a free order needs no payment; claim it instead")
        owned = [
            line.description
            for line in order.lines.select_related("pack")
            if _registry.entitlement_active(user=order.buyer, pack=line.pack) is not None
        ]
        # Another order's charge in flight, or charged but not yet fulfilled.
        busy = (
            Payment.objects.filter(
                Q(status=PaymentStatus.PENDING)
                | Q(status=PaymentStatus.SUCCEEDED, order__status=OrderStatus.PENDING),
                order__buyer_id=order.buyer_id,
                order__lines__pack__in=[line.pack_id for line in order.lines.all()],
            )
            .exclude(order=order)
            .exists()
        )
        if busy:
            raise PaymentInProgressError(
                "a payment for this pack is in progress in another checkout; wait for it",
                detail={"order": str(order.public_id)},
            )
        if not owned:
            if payment is None:
                payment = Payment.objects.create(
                    order=order,
                    provider=provider.name,
                    amount_minor=order.total_minor,
                    currency=order.currency,
                    idempotency_key=idempotency_key,
                )
            else:
                payment_transition(payment, PaymentStatus.PENDING)
            _charge_lock(payment.pk)  # held (session level) until the answer is recorded
            return payment, True
        # Bought meanwhile through another order (another tab): never charge twice for it.
        order_transition(order, OrderStatus.CANCELLED)
    raise AlreadyOwnedError(
        f"you already own {', '.join(owned)}; this order was cancelled",
        detail={"packs": owned, "order": str(order.public_id)},
    )


def payment_capture(
    *,
    order: Order,
    payment_method: str,
    idempotency_key: str,
    provider: PaymentProvider | None = None,
    sleep: Callable[[float], None] = time.sleep,
    hooks: CaptureHooks | None = None,
) -> Payment:
    """Charge ``order`` once. Returns the payment; look at its ``status``.

    The pending payment is committed first, the processor called outside any
    transaction with the payment's idempotency key, and the order fulfilled on
    its answer (:func:`settlement.payment_settle`); a crash in between is settled
    by the reconciliation task. ``succeeded``: the order is paid and entitled.
    ``declined``: final for this key (pay again with another card and key).
    ``failed``: transient errors outlasted the retries; the same key tries again.
    ``pending``: another submit's charge is in flight. A repeated key, or any
    key once the order is paid, returns the existing payment without charging.
    If the buyer came to own a pack of the order through another order
    meanwhile, the order is cancelled and :class:`AlreadyOwnedError` raised.
    """
    provider = provider or get_provider()
    hooks = hooks or CaptureHooks()
    payment, charge = _payment_open(order=order, idempotency_key=idempotency_key, provider=provider)
    if not charge:
        if payment.status == PaymentStatus.PENDING:
            # Another submit is charging: wait for its answer (its lock), never charge again.
            _charge_lock(payment.pk)
            _charge_unlock(payment.pk)
            payment.refresh_from_db()
        return payment_settle(payment=payment)
    try:
        _charge_with_retries(order, payment, provider, payment_method, sleep, hooks)
        hooks.after_charge(payment)
    finally:
        _charge_unlock(payment.pk)
    return payment_settle(payment=payment)


_LOCK_BASE = 0x4D53_0000_0000  # advisory lock keys of in-flight charges: base + payment id


def _charge_lock(payment_id: int) -> None:
    """A PostgreSQL session-level advisory lock: no transaction stays open during a charge,
    yet a second submit of the same payment waits for the first one's answer. A crashed
    process's connection closes and releases it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_LOCK_BASE + payment_id])


def _charge_unlock(payment_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_BASE + payment_id])


def _charge_with_retries(
    order: Order,
    payment: Payment,
    provider: PaymentProvider,
    payment_method: str,
    sleep: Callable[[float], None],
    hooks: CaptureHooks,
) -> None:
    attempts = charge_attempts()
    delay = charge_backoff_s()

    def remember(reference: str) -> None:
        Payment.objects.filter(pk=payment.pk).update(reference=reference)
        payment.reference = reference
        hooks.after_reference(payment)

    for i in range(attempts):
        if i:
            sleep(delay)
            delay *= 2
        payment.attempts += 1
        Payment.objects.filter(pk=payment.pk).update(attempts=payment.attempts)
        request = ChargeRequest(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            payment_method=payment_method,
            idempotency_key=payment.idempotency_key,
            description=f"MemStore order {order.public_id}",
            attempt=payment.attempts,
            metadata={"order": str(order.public_id), "payment": payment.idempotency_key},
            on_reference=remember,
        )
        try:
            result = provider.charge(request)
        except ProviderError as exc:
            log.warning("payment %s: provider error: %s", payment.idempotency_key, exc)
            result = ChargeResult(
                ChargeOutcome.TRANSIENT_FAILURE, error_code=exc.code, error_message=str(exc)
            )
        if result.outcome is not ChargeOutcome.TRANSIENT_FAILURE:
            apply_result(payment, result, attempts=payment.attempts)
            return
        if i == attempts - 1:
            apply_result(payment, result, attempts=payment.attempts)


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
        payment_transition(payment, PaymentStatus.REFUNDED)
        order_transition(order, OrderStatus.REFUNDED)
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
            fulfil(order)
        return order
