"""A small fixed-window rate limiter on Django's cache (login attempts).

``hit(key)`` counts one event; ``blocked(key)`` says whether the window is
full. Counts live in Django's cache, chosen by ``CACHE_URL`` (server/config.py):
the default local-memory cache counts per process, Redis across every process
and replica. Not here: HTTP responses (the login view).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    attempts: int
    window_s: int


LOGIN_LIMIT = Limit(attempts=5, window_s=300)


def _key(scope: str, ident: str) -> str:
    return f"memstore:ratelimit:{scope}:{ident}"


def blocked(scope: str, ident: str, limit: Limit = LOGIN_LIMIT) -> bool:
    return int(cache.get(_key(scope, ident), 0)) >= limit.attempts


def hit(scope: str, ident: str, limit: Limit = LOGIN_LIMIT) -> int:
    key = _key(scope, ident)
    if cache.add(key, 1, timeout=limit.window_s):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=limit.window_s)
        return 1


def reset(scope: str, ident: str) -> None:
    cache.delete(_key(scope, ident))
