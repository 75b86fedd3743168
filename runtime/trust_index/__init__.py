"""The client side of the registry's TUF index (SPEC section 15): :class:`TrustIndex`.

Not here: the install decision (:mod:`runtime.install.trust`).
"""

from .index import TUF_CODES, IndexedVersion, NamespaceKeys, TrustIndex, root_fingerprint

__all__ = ["TUF_CODES", "IndexedVersion", "NamespaceKeys", "TrustIndex", "root_fingerprint"]
