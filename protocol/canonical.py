"""Canonical JSON bytes (RFC 8785, the JSON Canonicalization Scheme).

Signatures and digests in MIP are computed over canonical bytes so that two
implementations that agree on the JSON *value* agree on the bytes, whatever
whitespace, key order or number spelling their JSON libraries produce.

Not here: parsing JSON from outside data (strictly, in
:func:`protocol.manifest.parse_json`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from .errors import ManifestError

__all__ = ["canonical_bytes", "canonical_sha256"]


def canonical_bytes(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of a JSON value.

    Raises ManifestError (``manifest.not_canonicalizable``) for values JSON
    cannot represent canonically: NaN, infinities, integers beyond 2**53,
    non-string keys, lone surrogates.
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ManifestError(
            f"value cannot be canonicalized (RFC 8785): {exc}",
            code="manifest.not_canonicalizable",
        ) from exc


def canonical_sha256(value: Any) -> str:
    """Hex sha256 of the canonical bytes of ``value``."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
