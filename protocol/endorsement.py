"""Key endorsements: an older publisher key vouching for a namespace's new one.

A client that pinned a namespace's publisher keys on first use accepts a key
added later only if one of the keys it already trusts signed
:func:`key_endorsement_bytes` for it (SPEC section 15). The registry stores
and relays the endorsement; it cannot make one, because it holds no
publisher's private key.

Pure: canonical bytes and a check; no I/O. Not here: where endorsements are
stored (``memstore.tuf``) or pinned keys (``runtime.trust_index``).
"""

from __future__ import annotations

from .canonical import canonical_bytes
from .signing import PublicKey, Signature, SigningKey

__all__ = ["ENDORSEMENT_TYPE", "endorse_key", "endorsement_valid", "key_endorsement_bytes"]

ENDORSEMENT_TYPE = "https://memstore.dev/key-endorsement/v1"


def key_endorsement_bytes(namespace: str, new_key: PublicKey) -> bytes:
    """What an endorsing key signs: the namespace and the new key, in canonical JSON."""
    return canonical_bytes(
        {"_type": ENDORSEMENT_TYPE, "namespace": namespace, "public_key": new_key.to_text()}
    )


def endorse_key(namespace: str, new_key: PublicKey, by: SigningKey) -> Signature:
    """``by``'s endorsement of ``new_key`` for ``namespace``."""
    return by.sign(key_endorsement_bytes(namespace, new_key))


def endorsement_valid(
    namespace: str, new_key: PublicKey, signature: Signature, endorser: PublicKey
) -> bool:
    """Whether ``signature`` is ``endorser``'s endorsement of ``new_key`` for ``namespace``."""
    if signature.keyid != endorser.keyid:
        return False
    return endorser.verify(signature.value, key_endorsement_bytes(namespace, new_key))
