"""Commerce models: orders, order lines, payments, refunds and the publisher ledger.

Plain data with constraints. Amounts are integer minor units plus an ISO 4217
currency; statuses are strings whose allowed moves are in :mod:`.states` and
are made only by :mod:`.services`. Entitlements are the registry's
(``packs.Entitlement``); an order line records which one it granted.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .money import Money, format_money
from .states import OrderStatus, PaymentStatus


class Order(models.Model):
    """A buyer's purchase of one or more packs, paid in one currency."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(
        max_length=16,
        choices=[(s.value, s.value) for s in OrderStatus],
        default=OrderStatus.PENDING.value,
    )
    currency = models.CharField(max_length=3, blank=True, default="")
    total_minor = models.BigIntegerField(default=0)
    #: Chosen by the client (the checkout form carries one): the same key from the
    #: same buyer is the same order, so a double submit creates one order.
    idempotency_key = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["buyer", "idempotency_key"], name="commerce_uniq_order_idempotency"
            ),
            models.CheckConstraint(
                condition=models.Q(total_minor__gte=0), name="order_total_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(total_minor=0) | ~models.Q(currency=""),
                name="order_paid_needs_currency",
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"order {self.public_id} ({self.status})"

    @property
    def total(self) -> Money | None:
        return Money(self.total_minor, self.currency) if self.currency else None

    @property
    def total_display(self) -> str:
        return format_money(self.total_minor, self.currency)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    pack = models.ForeignKey("packs.Pack", on_delete=models.PROTECT, related_name="order_lines")
    #: The version whose price was charged (the pack's newest at checkout).
    version = models.ForeignKey(
        "packs.PackVersion", on_delete=models.PROTECT, related_name="order_lines"
    )
    publisher = models.ForeignKey(
        "accounts.Namespace", on_delete=models.PROTECT, related_name="order_lines"
    )
    #: ``namespace/name@version`` as bought, kept even if the pack changes later.
    description = models.CharField(max_length=300)
    unit_price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, blank=True, default="")
    entitlement = models.ForeignKey(
        "packs.Entitlement", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "pack"], name="commerce_uniq_line_pack"),
            models.CheckConstraint(
                condition=models.Q(unit_price_minor__gte=0), name="line_price_gte_0"
            ),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description

    @property
    def price_display(self) -> str:
        return format_money(self.unit_price_minor, self.currency)


class Payment(models.Model):
    """One charge, possibly attempted several times (transient failures) under one key."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=40)
    status = models.CharField(
        max_length=16,
        choices=[(s.value, s.value) for s in PaymentStatus],
        default=PaymentStatus.PENDING.value,
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    #: Unique across all payments: the same key never charges twice.
    idempotency_key = models.CharField(max_length=100, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    reference = models.CharField(max_length=200, blank=True, default="")
    card_brand = models.CharField(max_length=20, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    error_code = models.CharField(max_length=60, blank=True, default="")
    error_message = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="payment_amount_gt_0"
            ),
            # At most one successful (or later refunded) payment per order.
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(status__in=["succeeded", "refunded"]),
                name="commerce_one_captured_payment_per_order",
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"payment {self.idempotency_key} ({self.status})"


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500, blank=True, default="")
    idempotency_key = models.CharField(max_length=100, unique=True)
    reference = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="refund_amount_gt_0"
            ),
        ]

    def __str__(self) -> str:
        return f"refund {self.idempotency_key}"


class LedgerEntry(models.Model):
    """What a publisher earned (or gave back) on one order line. Append-only.

    ``net = gross - fee``; a refund is an entry with negated amounts, so a
    publisher's balance is the sum of ``net_minor`` per currency.
    """

    class Kind(models.TextChoices):
        SALE = "sale"
        REFUND = "refund"

    publisher = models.ForeignKey(
        "accounts.Namespace", on_delete=models.PROTECT, related_name="ledger_entries"
    )
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    gross_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField()
    net_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order_line", "kind"], name="commerce_uniq_ledger"),
            models.CheckConstraint(
                condition=models.Q(net_minor=models.F("gross_minor") - models.F("fee_minor")),
                name="ledger_net_is_gross_minus_fee",
            ),
        ]
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.net_minor} {self.currency} for {self.publisher}"
