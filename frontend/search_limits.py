"""The web search's rate limit: the API's throttles (``anon`` and ``user`` rates), for a page.

``/search`` runs the same hybrid search as ``/api/v1/search/*`` (a query embedding and
a SQL round trip per request), so it gets the same limits: DRF's ``AnonRateThrottle``
and ``UserRateThrottle`` with the rates of ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
(``MEMSTORE_THROTTLE_ANON`` / ``_USER``), counted in Django's cache (Redis in
production) per client address or per user, as the API counts them. Its counts are
its own (a page view does not spend the client's API budget, nor the reverse).
Browsing without a query runs no search and is not counted.

A refused request gets a 429 page that says how long to wait, with ``Retry-After``.

Not here: the login limiter (``frontend.ratelimit``), the API's own throttling (DRF).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

__all__ = ["AnonSearchThrottle", "UserSearchThrottle", "search_throttled", "throttled_search"]


class AnonSearchThrottle(AnonRateThrottle):
    """The API's ``anon`` rate, per client address, for the web search."""

    cache_format = "throttle_web_search_%(scope)s_%(ident)s"


class UserSearchThrottle(UserRateThrottle):
    """The API's ``user`` rate, per signed-in user, for the web search."""

    cache_format = "throttle_web_search_%(scope)s_%(ident)s"


def search_throttled(request: HttpRequest) -> float | None:
    """Seconds to wait when this request is over a limit, else None (the request counts)."""
    waits: list[float] = []
    throttles: list[SimpleRateThrottle] = [AnonSearchThrottle(), UserSearchThrottle()]
    for throttle in throttles:
        # DRF's throttles read only ``user`` and ``META`` of the request; no view needed.
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            waits.append(throttle.wait() or 1.0)
    return max(waits) if waits else None


def throttled_search(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap the search view: a request with a query over the limit gets the 429 page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.GET.get("q", "").strip():
            wait = search_throttled(request)
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                response = render(
                    request,
                    "frontend/search_throttled.html",
                    {"seconds": seconds, "q": request.GET.get("q", "").strip()[:200]},
                    status=429,
                )
                response["Retry-After"] = str(seconds)
                return response
        return view(request, *args, **kwargs)

    return wrapper
