"""Commerce settings, read in one place (all optional Django settings with defaults).

``MEMSTORE_PAYMENT_PROVIDER``   ``test`` (default, the sandbox) or ``stripe``
``MEMSTORE_PLATFORM_FEE_BPS``   the marketplace's fee in basis points (default 1000 = 10 %)
``MEMSTORE_CHARGE_ATTEMPTS``    tries per charge on transient failures (default 3)
``MEMSTORE_CHARGE_BACKOFF_S``   first back-off between tries, doubled each time (default 0.2)
"""

from __future__ import annotations

from django.conf import settings


def platform_fee_bps() -> int:
    return int(getattr(settings, "MEMSTORE_PLATFORM_FEE_BPS", 1000))


def charge_attempts() -> int:
    return max(1, int(getattr(settings, "MEMSTORE_CHARGE_ATTEMPTS", 3)))


def charge_backoff_s() -> float:
    return float(getattr(settings, "MEMSTORE_CHARGE_BACKOFF_S", 0.2))
