"""Template filters of the marketplace: sizes, short digests, money."""

from __future__ import annotations

from django import template

from memstore.commerce.money import format_money

register = template.Library()


@register.filter
def filesize(value: int) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


@register.filter
def shortdigest(value: str, length: int = 12) -> str:
    return (value or "")[:length]


@register.filter
def money(amount_minor: int, currency: str) -> str:
    return format_money(int(amount_minor or 0), currency or "")
