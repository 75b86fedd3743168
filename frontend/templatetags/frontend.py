"""Template filters of the marketplace: sizes, short digests, money."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from memstore.commerce.conf import payment_provider
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


@register.simple_tag
def payments_sandbox() -> bool:
    """True when the demo sandbox takes payments (the footer and checkout say so)."""
    return payment_provider() == "test"


@register.filter
def money(amount_minor: int, currency: str) -> str:
    return format_money(int(amount_minor or 0), currency or "")


@register.filter
def highlight(text: str, query: str) -> str:
    """Escape ``text`` and wrap the query's words (3+ letters) in ``<mark>``."""
    safe = str(escape(text or ""))
    words = sorted({w for w in re.findall(r"\w{3,}", query or "")}, key=len, reverse=True)[:12]
    if not words:
        return mark_safe(safe)  # noqa: S308 - escaped above
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(str(escape(w))) for w in words) + r")", re.IGNORECASE
    )
    return mark_safe(pattern.sub(r"<mark>\1</mark>", safe))  # noqa: S308 - escaped above


@register.filter
def lookup(mapping: dict[str, str], key: str) -> str:
    """``mapping[key]``, or an empty string (templates cannot index by a variable)."""
    return mapping.get(key, "") if isinstance(mapping, dict) else ""
