"""Celery tasks of commerce: thin wrappers over ``settlement`` (run by beat).

``reconcile_payments`` settles payments a crash left pending; it is idempotent
(the state tables make a second run a no-op), so ``acks_late`` redelivery is safe.
Not here: the settling rules (``settlement.payments_reconcile``).
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(  # type: ignore[untyped-decorator]
    name="memstore.commerce.reconcile_payments", acks_late=True, ignore_result=True
)
def reconcile_payments() -> int:
    return services.payments_reconcile()
