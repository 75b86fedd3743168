"""The order and payment state machines, as explicit transition tables.

Models keep their status in a plain ``CharField``; every change goes through
:func:`transition`, which raises :class:`IllegalTransitionError` for a move the
table does not list. Not here: side effects of a move (those are in services).

Order::

    pending ──> paid ──> refunded
       └──────> cancelled

Payment (one per charge attempt series, keyed by its idempotency key)::

    pending ──> succeeded ──> refunded
       ├──────> declined                (final: the card said no)
       └──────> failed ──> succeeded    (transient error; a retry may succeed)
                  ├──────> declined
                  ├──────> pending      (the same key submitted again: a charge in flight)
                  └──────> failed
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from .errors import IllegalTransitionError

__all__ = [
    "ORDER_TRANSITIONS",
    "PAYMENT_TRANSITIONS",
    "OrderStatus",
    "PaymentStatus",
    "check_transition",
]


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"
    REFUNDED = "refunded"


ORDER_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

PAYMENT_TRANSITIONS: Mapping[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.SUCCEEDED, PaymentStatus.DECLINED, PaymentStatus.FAILED}
    ),
    PaymentStatus.FAILED: frozenset(
        {
            PaymentStatus.SUCCEEDED,
            PaymentStatus.DECLINED,
            PaymentStatus.FAILED,
            PaymentStatus.PENDING,
        }
    ),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.DECLINED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}


def check_transition(
    table: Mapping[Any, frozenset[Any]],
    current: str,
    target: str,
    *,
    what: str,
) -> None:
    """Raise :class:`IllegalTransitionError` unless ``current -> target`` is in ``table``."""
    allowed = {str(s) for s in table.get(current, frozenset())}
    if str(target) not in allowed:
        raise IllegalTransitionError(
            f"{what} cannot go from {current!s} to {target!s}",
            detail={"from": str(current), "to": str(target), "allowed": sorted(allowed)},
        )
