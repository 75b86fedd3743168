"""Commerce for the marketplace: orders, payments, refunds and publisher earnings.

Writes live in :mod:`.services` (``order_create``, ``payment_capture``,
``order_refund``, ``free_pack_claim``), reads in :mod:`.selectors`. Payments go
through a :class:`~.providers.PaymentProvider` chosen by settings (the built-in
deterministic :class:`~.providers.TestProvider` by default). Entitlements are
the registry's (``memstore.packs``); this app grants and revokes them through
:mod:`._entitlements`. Importing this package does nothing (no Django setup).
"""
