"""How django-axes limits password logins: one limiter for the web login, ``/admin/`` and
the password-to-token API (``POST /api/v1/auth/tokens`` with a username and password).

Axes counts failed ``authenticate()`` calls in the database (shared by every process and
replica) and refuses further attempts while locked. The lock is **per client address**
(``AXES_LOCKOUT_PARAMETERS = ["ip_address"]``): a stranger who guesses a user's password
locks out only their own address, so the owner still logs in from hers. Each failure
during a lock extends it, doubling from :data:`BASE_COOL_OFF` up to :data:`MAX_COOL_OFF`
(backoff). The address is the one DRF's throttles see (``MEMSTORE_NUM_PROXIES`` aware).
Settings: ``server/settings.py`` (``AXES_*``).

Not here: the login views themselves (``frontend.views.auth``, Django's admin, the API).
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

__all__ = [
    "BASE_COOL_OFF",
    "FAILURE_LIMIT",
    "MAX_COOL_OFF",
    "LoginLimitBackend",
    "client_ip",
    "cool_off",
    "lockout_response",
]

#: Failed attempts from one address before it is locked.
FAILURE_LIMIT = 5
BASE_COOL_OFF = timedelta(minutes=5)
MAX_COOL_OFF = timedelta(hours=24)
LOCKED_CODE = "registry.too_many_attempts"


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as DRF's throttles see it (``MEMSTORE_NUM_PROXIES`` aware);
    None for a request without one (``Client.force_login``'s)."""
    from .views._common import client_ip as ident

    address = ident(request)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address


class LoginLimitBackend(AxesStandaloneBackend):  # type: ignore[misc]
    """Axes' check for logins over HTTP; a call without a request (a management command,
    the test client's ``login()``) has no address to limit and goes to the next backend."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None,
        password: str | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        if request is None:
            return None
        super().authenticate(request, username, password, **kwargs)
        return None


def cool_off(request: HttpRequest | None = None) -> timedelta:
    """5 minutes after the limit, doubling with each further failure, at most a day."""
    failures = int(getattr(request, "axes_failures_since_start", 0) or 0)
    over = max(0, failures - FAILURE_LIMIT)
    if over >= 9:  # 5 min * 2**9 > 24 h
        return MAX_COOL_OFF
    wait: timedelta = BASE_COOL_OFF * (2**over)
    return min(wait, MAX_COOL_OFF)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429: the registry's error shape under /api/, a page for the web login and /admin/."""
    wait = cool_off(request)
    message = "Too many failed attempts. Wait a few minutes and try again."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {
                "error": {
                    "code": LOCKED_CODE,
                    "message": message,
                    "detail": {"retry_after_s": int(wait.total_seconds())},
                }
            },
            status=429,
        )
    else:
        response = render(
            request,
            "frontend/auth/locked_out.html",
            {"message": message, "minutes": max(1, int(wait.total_seconds() // 60))},
            status=429,
        )
    response["Retry-After"] = str(int(wait.total_seconds()))
    return response
