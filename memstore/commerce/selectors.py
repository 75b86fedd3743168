"""Reads of the commerce app: a buyer's orders and library, a publisher's sales and balance.

Not here: writes (``services``). Entitlement rows, and the rule for which are
active (``packs.selectors.active_entitlements``), are the registry's; the
library reads them together with the order that granted them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet, Sum

from ..accounts.models import Namespace, User
from ..packs.models import Pack
from ..packs.selectors import active_entitlements
from .models import LedgerEntry, Order, OrderLine
from .money import Money
from .states import OrderStatus

__all__ = [
    "LibraryItem",
    "library_for_user",
    "order_for_buyer",
    "orders_for_buyer",
    "publisher_balance",
    "publisher_sales",
    "user_owns_pack",
]


@dataclass(frozen=True)
class LibraryItem:
    pack: Pack
    granted_at: datetime
    source: str
    order: Order | None
    price_display: str


def orders_for_buyer(*, buyer: User) -> QuerySet[Order]:
    return Order.objects.filter(buyer=buyer).prefetch_related("lines", "payments")


def order_for_buyer(*, buyer: User, public_id: uuid.UUID | str) -> Order | None:
    return (
        Order.objects.filter(buyer=buyer, public_id=public_id)
        .prefetch_related("lines__pack__namespace", "payments")
        .first()
    )


def user_owns_pack(*, user: User | None, pack: Pack) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return active_entitlements(user=user, pack=pack).exists()


def library_for_user(*, user: User) -> list[LibraryItem]:
    """The packs ``user`` holds an active entitlement to, newest first, with their order."""
    entitlements = (
        active_entitlements(user=user)
        .select_related("pack__namespace")
        .order_by("-granted_at", "-id")
    )
    lines = {
        line.entitlement_id: line
        for line in OrderLine.objects.filter(
            entitlement__in=entitlements, order__status=OrderStatus.PAID
        ).select_related("order")
    }
    items = []
    for ent in entitlements:
        line = lines.get(ent.pk)
        items.append(
            LibraryItem(
                pack=ent.pack,
                granted_at=ent.granted_at,
                source=ent.source,
                order=line.order if line else None,
                price_display=line.price_display if line else "",
            )
        )
    return items


def publisher_sales(*, namespace: Namespace) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(publisher=namespace).select_related(
        "order_line__order", "order_line__pack"
    )


def publisher_balance(*, namespace: Namespace) -> list[Money]:
    """Net earnings per currency (sales minus fees minus refunds)."""
    rows = (
        LedgerEntry.objects.filter(publisher=namespace)
        .values("currency")
        .annotate(net=Sum("net_minor"))
        .order_by("currency")
    )
    return [Money(int(r["net"] or 0), r["currency"]) for r in rows]
