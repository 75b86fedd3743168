"""MIP 2 signatures as DSSE envelopes over an in-toto Statement v1 (SPEC section 16).

A MIP 2 signature signs the DSSE pre-authentication encoding (PAE) of an
in-toto Statement that is *derived from the manifest bytes*, so a verifier
never trusts the statement a pack carries: it rebuilds it and checks the
signature over that. The statement, in RFC 8785 canonical bytes::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "<name>@<version>", "digest": {"sha256": <sha256 of manifest.json>}},
                 {"name": "<payload path>", "digest": {"sha256": <blob digest>}}, ...],
     "predicateType": "https://memstore.dev/mip/2/pack",
     "predicate": {"manifest": <the manifest, as JSON>}}

Payload subjects are sorted by path; the manifest's own subject comes first.
That is the shape OpenSSF Model Signing uses (files as subjects, a predicate
of the signer's own), so any DSSE tool (``securesystemslib.dsse``, sigstore's,
in-toto's) can check ``signatures/<keyid>.json`` of a pack with the
publisher's Ed25519 key and read the subjects to check the extracted files.

The envelope in a pack holds exactly one signature, with our key id::

    {"payload": <base64 statement>, "payloadType": "application/vnd.in-toto+json",
     "signatures": [{"keyid": <64 hex>, "sig": <base64 Ed25519 over PAE>}]}

Pure: no I/O, no clock. Not here: which keys are trusted (:mod:`protocol.trust`),
the detached MIP 1 form (:mod:`protocol.signing`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache
from typing import Any

from .canonical import canonical_bytes
from .errors import ManifestError, MIPError, SignatureError
from .manifest import Manifest, parse_json

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "envelope_bytes",
    "pack_statement",
    "pae",
    "parse_envelope",
    "statement_bytes",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://memstore.dev/mip/2/pack"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the bytes a DSSE signature is over."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def pack_statement(manifest: Manifest, manifest_bytes: bytes) -> dict[str, Any]:
    """The in-toto Statement a MIP 2 signature covers, as a JSON value."""
    paths = sorted((ref.path, ref.sha256) for cube in manifest.cubes for ref in cube.payloads)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"{manifest.name}@{manifest.version}",
                "digest": {"sha256": hashlib.sha256(manifest_bytes).hexdigest()},
            },
            *({"name": path, "digest": {"sha256": digest}} for path, digest in paths),
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"manifest": parse_json(manifest_bytes, what="manifest")},
    }


@lru_cache(maxsize=16)
def statement_bytes(manifest_bytes: bytes) -> bytes:
    """Canonical statement bytes for a MIP 2 manifest; ``ManifestError`` for anything else.

    Cached: the registry, the installer and the pack page ask it once per
    signature of the same manifest.
    """
    manifest = Manifest.from_dict(parse_json(manifest_bytes, what="manifest"))
    if manifest.major != 2:
        raise ManifestError(
            f"a DSSE signature covers a MIP 2 manifest, not MIP {manifest.mip_version}",
            code="manifest.unsupported_version",
        )
    return canonical_bytes(pack_statement(manifest, manifest_bytes))


def signed_message(manifest_bytes: bytes) -> bytes | None:
    """PAE of the manifest's statement, or ``None`` when no statement can be derived."""
    try:
        return pae(PAYLOAD_TYPE, statement_bytes(manifest_bytes))
    except MIPError:
        return None


def envelope_bytes(statement: bytes, keyid: str, value: bytes) -> bytes:
    """The canonical DSSE envelope stored as ``signatures/<keyid>.json`` in a MIP 2 pack."""
    return canonical_bytes(
        {
            "payload": base64.b64encode(statement).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(value).decode("ascii")}],
        }
    )


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise SignatureError(f"DSSE {what} must be base64 text", code="signature.malformed")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(
            f"DSSE {what} is not base64: {exc}", code="signature.malformed"
        ) from exc


def parse_envelope(data: dict[str, Any]) -> tuple[bytes, str, bytes]:
    """``(statement, keyid, signature)`` of a one-signature DSSE envelope (shape checked only)."""
    if data.get("payloadType") != PAYLOAD_TYPE:
        raise SignatureError(
            f"DSSE payloadType must be {PAYLOAD_TYPE!r}, not {data.get('payloadType')!r}",
            code="signature.unsupported_algorithm",
        )
    statement = _b64(data.get("payload"), "payload")
    sigs = data.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise SignatureError(
            "a MIP DSSE envelope holds exactly one signature", code="signature.malformed"
        )
    keyid = sigs[0].get("keyid")
    if not isinstance(keyid, str):
        raise SignatureError("DSSE signature keyid must be text", code="signature.malformed")
    return statement, keyid, _b64(sigs[0].get("sig"), "sig")
