"""Read-mostly admin for commerce: money moves only through the services (refund action)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .errors import CommerceError
from .models import LedgerEntry, Order, OrderLine, Payment, Refund


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LineInline(ReadOnlyInline):
    model = OrderLine


class PaymentInline(ReadOnlyInline):
    model = Payment


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "buyer", "status", "total_minor", "currency", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("public_id", "buyer__username")
    inlines = (LineInline, PaymentInline)
    actions = ("refund",)

    @admin.action(description="Refund the selected paid orders (revokes access)")
    def refund(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done = 0
        for order in queryset:
            try:
                services.order_refund(order=order, actor=request.user, reason="refunded by staff")  # type: ignore[arg-type]
                done += 1
            except CommerceError as exc:
                self.message_user(request, f"{order.public_id}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} order(s) refunded.")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "idempotency_key",
        "order",
        "provider",
        "status",
        "amount_minor",
        "currency",
        "attempts",
    )
    list_filter = ("status", "provider")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("idempotency_key", "payment", "amount_minor", "currency", "created_at")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "publisher",
        "kind",
        "gross_minor",
        "fee_minor",
        "net_minor",
        "currency",
        "created_at",
    )
    list_filter = ("kind", "currency", "publisher")
