"""Commerce for the marketplace: orders, payments, refunds and publisher earnings.

Writes live in :mod:`.services` (``order_create``, ``payment_capture``,
``order_refund``, ``free_pack_claim``) and :mod:`.settlement` (webhooks,
reconciliation), reads in :mod:`.selectors`. Payments go through a
:class:`~.providers.PaymentProvider` chosen by settings: Stripe (official SDK)
by default, the deterministic sandbox only when a demo asks for it. Entitlements are
the registry's (``memstore.packs``); this app grants and revokes them through
:mod:`._registry`. Importing this package does nothing (no Django setup).
"""
