"""How django-axes limits password logins: one limiter for the web login, ``/admin/`` and
the password-to-token API (``POST /api/v1/auth/tokens`` with a username and password).

Axes counts failed ``authenticate()`` calls in the database (shared by every process and
replica) and refuses further attempts while locked. Two rules, per address first:

- **Per client address** (``AXES_LOCKOUT_PARAMETERS = ["ip_address"]``): after
  :data:`FAILURE_LIMIT` failures an address is locked; each further failure doubles the
  lock from :data:`BASE_COOL_OFF` up to :data:`MAX_COOL_OFF` (backoff). The lock's end
  is stored with the attempt (``AXES_USE_ATTEMPT_EXPIRATION``), so it holds across
  requests and processes. A stranger who guesses a user's password locks out only their
  own address.
- **Account-wide, with a fixed cool-down** (:func:`failure_limit`): when
  :data:`ACCOUNT_FAILURE_LIMIT` failures against one username arrive from any addresses
  within :data:`ACCOUNT_COOL_OFF`, at most :data:`FAILURE_LIMIT` counted per address (a
  guess spread over several addresses; one address never triggers it), new addresses are
  refused for that username until the failures are older than the cool-down. The
  account's own addresses (a successful login in the last :data:`KNOWN_ADDRESS_DAYS`
  days, axes' access log) are exempt, so a stranger cannot keep the owner out.

The address is the one DRF's throttles see (``MEMSTORE_NUM_PROXIES`` aware).
Settings: ``server/settings.py`` (``AXES_*``).

Not here: the login views themselves (``frontend.views.auth``, Django's admin, the API).
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_username
from axes.models import AccessAttempt, AccessLog
from django.db.models import F, Sum, Value
from django.db.models.functions import Least
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

__all__ = [
    "ACCOUNT_COOL_OFF",
    "ACCOUNT_FAILURE_LIMIT",
    "BASE_COOL_OFF",
    "FAILURE_LIMIT",
    "KNOWN_ADDRESS_DAYS",
    "MAX_COOL_OFF",
    "LoginLimitBackend",
    "client_ip",
    "cool_off",
    "failure_limit",
    "lockout_response",
]

#: Failed attempts from one address before it is locked.
FAILURE_LIMIT = 5
BASE_COOL_OFF = timedelta(minutes=5)
MAX_COOL_OFF = timedelta(hours=24)
#: Failed attempts against one username, from all addresses together, before new
#: addresses are refused for it; they count for :data:`ACCOUNT_COOL_OFF` (no backoff).
ACCOUNT_FAILURE_LIMIT = 20
ACCOUNT_COOL_OFF = timedelta(minutes=15)
#: An address the account logged in from this recently is its own (exempt from the
#: account-wide rule).
KNOWN_ADDRESS_DAYS = 30
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


def _address_failures(request: HttpRequest | None) -> int:
    """Failures recorded for the request's address (its lock, not yet expired)."""
    address = getattr(request, "axes_ip_address", None)
    if not address:
        return 0
    total = AccessAttempt.objects.filter(ip_address=address).aggregate(
        total=Sum("failures_since_start")
    )["total"]
    return int(total or 0)


def cool_off(request: HttpRequest | None = None) -> timedelta:
    """5 minutes after the limit, doubling with each further failure, at most a day.

    Counted from the database too: axes asks for the cool-off before it has counted the
    request's failures (when it stores the lock's end), and the lock must not shrink."""
    failures = max(
        int(getattr(request, "axes_failures_since_start", 0) or 0), _address_failures(request)
    )
    over = max(0, failures - FAILURE_LIMIT)
    if over >= 9:  # 5 min * 2**9 > 24 h
        return MAX_COOL_OFF
    wait: timedelta = BASE_COOL_OFF * (2**over)
    return min(wait, MAX_COOL_OFF)


def _known_address(username: str, address: str) -> bool:
    since = timezone.now() - timedelta(days=KNOWN_ADDRESS_DAYS)
    logins = AccessLog.objects.filter(username=username, ip_address=address)
    return bool(logins.filter(attempt_time__gte=since).exists())


def account_under_attack(username: str) -> bool:
    """Whether :data:`ACCOUNT_FAILURE_LIMIT` failures against ``username`` arrived within
    the last :data:`ACCOUNT_COOL_OFF`, counting at most :data:`FAILURE_LIMIT` per address
    (so it takes several addresses)."""
    since = timezone.now() - ACCOUNT_COOL_OFF
    # At most FAILURE_LIMIT per address: one address (locked by then) never locks the account.
    per_address = Least(F("failures_since_start"), Value(FAILURE_LIMIT))
    total = AccessAttempt.objects.filter(username=username, attempt_time__gte=since).aggregate(
        total=Sum(per_address)
    )["total"]
    return int(total or 0) >= ACCOUNT_FAILURE_LIMIT


def failure_limit(request: HttpRequest, credentials: Any = None) -> int:
    """Axes' failure limit for this attempt: :data:`FAILURE_LIMIT` for the address, or 0
    (refused before the password is checked) for an address new to an account under
    attack. Axes compares it with the address's failures (``AXES_LOCKOUT_PARAMETERS``)."""
    username = get_client_username(request, credentials)
    address = getattr(request, "axes_ip_address", None)
    if (
        username
        and address
        and account_under_attack(username)
        and not _known_address(username, address)
    ):
        return 0
    return FAILURE_LIMIT


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429: the registry's error shape under /api/, a page for the web login and /admin/."""
    wait = cool_off(request)
    username = get_client_username(request, credentials)
    if username and account_under_attack(username):
        wait = max(wait, ACCOUNT_COOL_OFF)
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
