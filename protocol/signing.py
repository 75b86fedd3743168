"""Ed25519 keys and manifest signatures, in the MIP 1 detached form or as DSSE (MIP 2).

A MIP 1 signature (``alg`` ``ed25519``) is Ed25519 over the RFC 8785
canonical bytes of the manifest, exactly the bytes stored as
``manifest.json`` in a pack. A MIP 2 signature (``alg`` ``ed25519-dsse``) is
Ed25519 over the DSSE PAE of an in-toto Statement derived from those bytes
(:mod:`protocol.dsse`); in a MIP 2 pack it is stored as the whole DSSE
envelope, on the wire as ``{"alg", "keyid", "sig"}`` like MIP 1 (the verifier
rebuilds the statement from the manifest, so it need not travel). A key id is the hex
sha256 of the raw 32-byte public key, so anyone holding the key can derive it
and nobody can choose it. A pack may carry several signatures (co-signers,
key rotation); a verifier decides which keys it trusts and how many valid
signatures it needs.

Which signatures count is decided in one place, :mod:`protocol.trust`
(revocations included). No I/O here; key files are read by the callers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import dsse
from .canonical import canonical_bytes
from .errors import ManifestError, SignatureError
from .manifest import parse_json
from .version import major_of

__all__ = [
    "DSSE_ALGORITHM",
    "SIGNATURE_ALGORITHM",
    "PublicKey",
    "Signature",
    "SigningKey",
    "key_id",
    "sign_manifest",
]

SIGNATURE_ALGORITHM = "ed25519"
#: A MIP 2 signature: Ed25519 over the DSSE PAE of the pack's in-toto statement.
DSSE_ALGORITHM = "ed25519-dsse"
_ALGORITHMS = (SIGNATURE_ALGORITHM, DSSE_ALGORITHM)


def key_id(raw_public_key: bytes) -> str:
    """The key id MIP uses everywhere: hex sha256 of the raw public key."""
    return hashlib.sha256(raw_public_key).hexdigest()


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key with its derived key id."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise SignatureError(
                "an Ed25519 public key is 32 bytes", code="signature.bad_key", size=len(self.raw)
            )

    @property
    def keyid(self) -> str:
        return key_id(self.raw)

    def to_text(self) -> str:
        """``ed25519:<base64>``: the form used in registry APIs and lockfiles."""
        return f"{SIGNATURE_ALGORITHM}:{base64.b64encode(self.raw).decode('ascii')}"

    def to_pem(self) -> bytes:
        return self._key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        alg, sep, body = text.strip().partition(":")
        if not sep or alg != SIGNATURE_ALGORITHM:
            raise SignatureError(
                "public key text must look like 'ed25519:<base64>'", code="signature.bad_key"
            )
        try:
            return cls(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise SignatureError(
                f"public key is not base64: {exc}", code="signature.bad_key"
            ) from exc

    @classmethod
    def from_pem(cls, data: bytes) -> PublicKey:
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"not a PEM public key: {exc}", code="signature.bad_key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError("only Ed25519 public keys are accepted", code="signature.bad_key")
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @classmethod
    def load(cls, data: bytes) -> PublicKey:
        """Accept either a PEM file's bytes or the ``ed25519:<base64>`` text."""
        if data.lstrip().startswith(b"-----BEGIN"):
            return cls.from_pem(data)
        try:
            return cls.from_text(data.decode("ascii"))
        except UnicodeDecodeError as exc:
            raise SignatureError("public key file is not text", code="signature.bad_key") from exc

    def _key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key().verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key. Never part of a pack; kept by the publisher."""

    _private: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """A deterministic key from 32 bytes: for test vectors, never for real keys."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes, password: bytes | None = None) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError) as exc:
            raise SignatureError(
                f"not a usable PEM private key: {exc}", code="signature.bad_key"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError("only Ed25519 private keys are accepted", code="signature.bad_key")
        return cls(key)

    def to_pem(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @property
    def public_key(self) -> PublicKey:
        raw = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return PublicKey(raw)

    @property
    def keyid(self) -> str:
        return self.public_key.keyid

    def sign(self, message: bytes) -> Signature:
        return Signature(self.keyid, self._private.sign(message))


@dataclass(frozen=True)
class Signature:
    """A signature: which key, the 64 signature bytes, and what they are over (``algorithm``).

    ``statement`` is the in-toto statement a DSSE envelope read from a pack
    carried (kept so a reader can compare it with the one the manifest
    gives); verification never uses it.
    """

    keyid: str
    value: bytes
    algorithm: str = SIGNATURE_ALGORITHM
    statement: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def is_dsse(self) -> bool:
        return self.algorithm == DSSE_ALGORITHM

    def signed_message(self, manifest_bytes: bytes) -> bytes | None:
        """The bytes this signature must verify over for ``manifest_bytes`` (``None``: none)."""
        if self.is_dsse:
            return dsse.signed_message(manifest_bytes)
        return manifest_bytes

    def verifies(self, key: PublicKey, manifest_bytes: bytes) -> bool:
        """Whether this is ``key``'s valid signature of ``manifest_bytes`` (in its form)."""
        message = self.signed_message(manifest_bytes)
        return message is not None and key.verify(self.value, message)

    def to_dict(self) -> dict[str, str]:
        """The compact wire form (registry APIs, lockfiles, MIP 1 packs)."""
        return {
            "alg": self.algorithm,
            "keyid": self.keyid,
            "sig": base64.b64encode(self.value).decode("ascii"),
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON of :meth:`to_dict`, as stored under ``signatures/`` in a MIP 1 pack."""
        return canonical_bytes(self.to_dict())

    def envelope_bytes(self, manifest_bytes: bytes) -> bytes:
        """The DSSE envelope of a MIP 2 pack's ``signatures/<keyid>.json``."""
        if not self.is_dsse:
            return self.to_bytes()
        return dsse.envelope_bytes(dsse.statement_bytes(manifest_bytes), self.keyid, self.value)

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        """The compact form, or a one-signature DSSE envelope (shape only, not the statement)."""
        if not isinstance(data, dict):
            raise SignatureError("a signature must be a JSON object", code="signature.malformed")
        if "payloadType" in data:
            statement, env_keyid, env_value = dsse.parse_envelope(data)
            return cls(
                _checked_keyid(env_keyid), _checked_value(env_value), DSSE_ALGORITHM, statement
            )
        alg, keyid, sig = data.get("alg"), data.get("keyid"), data.get("sig")
        if alg not in _ALGORITHMS:
            raise SignatureError(
                f"unsupported signature algorithm {alg!r}; MIP uses ed25519 (or ed25519-dsse)",
                code="signature.unsupported_algorithm",
            )
        if not isinstance(keyid, str):
            raise SignatureError(
                "signature keyid must be 64 hex digits", code="signature.malformed"
            )
        if not isinstance(sig, str):
            raise SignatureError("signature 'sig' must be base64 text", code="signature.malformed")
        try:
            value = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError(
                f"signature is not base64: {exc}", code="signature.malformed"
            ) from exc
        return cls(_checked_keyid(keyid), _checked_value(value), str(alg))

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        try:
            parsed = parse_json(data, what="signature")
        except ManifestError as exc:
            raise SignatureError(exc.message, code="signature.malformed") from exc
        return cls.from_dict(parsed)


def _checked_keyid(keyid: str) -> str:
    if len(keyid) != 64 or not _is_hex(keyid):
        raise SignatureError("signature keyid must be 64 hex digits", code="signature.malformed")
    return keyid


def _checked_value(value: bytes) -> bytes:
    if len(value) != 64:
        raise SignatureError("an Ed25519 signature is 64 bytes", code="signature.malformed")
    return value


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in text)


def sign_manifest(manifest_bytes: bytes, key: SigningKey) -> Signature:
    """Sign canonical manifest bytes (exactly as stored in the pack), in the form of its major.

    A MIP 1 manifest gets the detached form; a MIP 2 manifest a DSSE signature
    over its in-toto statement.
    """
    try:
        value = parse_json(manifest_bytes, what="manifest")
    except ManifestError:
        value = None
    mip_version = value.get("mip_version") if isinstance(value, dict) else None
    if isinstance(mip_version, str) and major_of(mip_version) == 2:
        message = dsse.pae(dsse.PAYLOAD_TYPE, dsse.statement_bytes(manifest_bytes))
        return Signature(key.keyid, key.sign(message).value, DSSE_ALGORITHM)
    return key.sign(manifest_bytes)
