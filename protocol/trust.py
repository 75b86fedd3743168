"""The one trust rule: which signatures count, given the keys a verifier knows.

A verifier (the registry at publish, the installer, the pack page) knows some
keys and, for some of them, that they were revoked and since when. Each asks
the same question of a pack's signatures; :class:`TrustedKeys` answers it once.
For every signature the verdict (:class:`SignerStatus`) is:

* ``unknown_key``: the verifier does not know the key;
* ``invalid``: the signature does not verify under its key;
* ``revoked``: it verifies, but the key was revoked at the time of judgement;
* ``verified``: it verifies by a key in force then (``revoked_later`` tells
  that the key was revoked after that time).

The time of judgement ``at`` is the caller's: *now* for a new publication, the
publication time for the page of an old version. A key revoked with no known
time, or judged with no time, counts as revoked whenever it is revoked at all.

:meth:`Verification.raise_for_status` is the refusing form, with the codes of
:func:`protocol.signing.verify_or_raise` plus ``signature.revoked_key`` (no
signature verified, and one is by a revoked key).

Pure: no clock, no I/O; keys, revocations and the time are passed in.
Not here: where keys come from (a registry's database, a resolve answer,
``$MEMOS_HOME/trusted-keys``) or how they are pinned.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .errors import SignatureError
from .signing import PublicKey, Signature

__all__ = [
    "SignerCheck",
    "SignerStatus",
    "TrustedKey",
    "TrustedKeys",
    "Verification",
    "VerificationResult",
    "verify_or_raise",
    "verify_signatures",
]


class SignerStatus(enum.StrEnum):
    """What one signature is worth to the verifier."""

    VERIFIED = "verified"
    REVOKED = "revoked"
    INVALID = "invalid"
    UNKNOWN_KEY = "unknown_key"


@dataclass(frozen=True)
class TrustedKey:
    """A key the verifier knows, and whether (and since when) it is revoked."""

    key: PublicKey
    revoked: bool = False
    revoked_at: datetime | None = None
    label: str = ""

    @property
    def keyid(self) -> str:
        return self.key.keyid

    @property
    def ever_revoked(self) -> bool:
        return self.revoked or self.revoked_at is not None

    def revoked_as_of(self, at: datetime | None) -> bool:
        """Whether the key is revoked at time ``at`` (see the module docstring)."""
        if not self.ever_revoked:
            return False
        return self.revoked_at is None or at is None or self.revoked_at <= at


@dataclass(frozen=True)
class SignerCheck:
    """The verdict on one signature; ``key`` is ``None`` for an unknown key."""

    keyid: str
    status: SignerStatus
    key: TrustedKey | None = None
    #: The key was revoked at the time of judgement (whatever the status).
    key_revoked: bool = False

    @property
    def revoked_later(self) -> bool:
        """Verified, by a key that was revoked after the time of judgement."""
        return (
            self.status is SignerStatus.VERIFIED and self.key is not None and self.key.ever_revoked
        )


def _unique(keyids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(keyids))


@dataclass(frozen=True)
class Verification:
    """Every signature's verdict, and whether enough of them are verified."""

    signers: tuple[SignerCheck, ...]
    threshold: int = 1

    @property
    def valid(self) -> tuple[str, ...]:
        """Key ids of the verified signatures, each once, in signature order."""
        return _unique(s.keyid for s in self.signers if s.status is SignerStatus.VERIFIED)

    @property
    def tampered(self) -> tuple[str, ...]:
        """Invalid signatures by keys in force: the manifest was altered after signing."""
        return tuple(
            s.keyid for s in self.signers if s.status is SignerStatus.INVALID and not s.key_revoked
        )

    @property
    def untrusted(self) -> tuple[str, ...]:
        """Signatures by keys not in force: unknown or revoked at the time of judgement."""
        return tuple(
            s.keyid for s in self.signers if s.status is SignerStatus.UNKNOWN_KEY or s.key_revoked
        )

    @property
    def invalid(self) -> tuple[str, ...]:
        """The name :func:`verify_signatures` has always given :attr:`tampered`."""
        return self.tampered

    @property
    def missing(self) -> int:
        """How many more verified signatures are needed."""
        return max(0, self.threshold - len(self.valid))

    @property
    def revoked(self) -> tuple[str, ...]:
        """Key ids of signatures by keys revoked at the time of judgement."""
        return _unique(s.keyid for s in self.signers if s.key_revoked)

    @property
    def ok(self) -> bool:
        return len(self.valid) >= self.threshold and not self.tampered

    def raise_for_status(self) -> Verification:
        """Raise a :class:`SignatureError` with a stable code unless ``ok``; else return self."""
        if not self.signers:
            raise SignatureError("the pack is not signed", code="signature.missing")
        if self.tampered:
            raise SignatureError(
                "a signature by a trusted key does not match the manifest: the pack was altered",
                code="signature.invalid",
                keyids=list(self.tampered),
            )
        if not self.valid and self.revoked:
            raise SignatureError(
                "the pack is signed only by a revoked key: refused",
                code="signature.revoked_key",
                keyids=sorted(self.revoked),
            )
        if not self.valid:
            raise SignatureError(
                "no signature is by a trusted key",
                code="signature.untrusted",
                keyids=list(self.untrusted),
            )
        if len(self.valid) < self.threshold:
            raise SignatureError(
                f"{len(self.valid)} valid signature(s); {self.threshold} required",
                code="signature.threshold",
                valid=list(self.valid),
            )
        return self


class TrustedKeys:
    """The keys one verifier knows, with their revocations; judges signatures."""

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self._keys: dict[str, TrustedKey] = {k.keyid: k for k in keys}

    @classmethod
    def of(cls, keys: Iterable[PublicKey], *, revoked: Iterable[str] = ()) -> TrustedKeys:
        """Plain keys, the ones whose ids are in ``revoked`` revoked for good."""
        gone = set(revoked)
        return cls(TrustedKey(k, revoked=k.keyid in gone) for k in keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, keyid: object) -> bool:
        return keyid in self._keys

    def get(self, keyid: str) -> TrustedKey | None:
        return self._keys.get(keyid)

    def in_force(self, at: datetime | None = None) -> tuple[PublicKey, ...]:
        """The keys not revoked at ``at``: the ones a new signature may be made with."""
        return tuple(k.key for k in self._keys.values() if not k.revoked_as_of(at))

    def check(
        self, signature: Signature, manifest_bytes: bytes, *, at: datetime | None = None
    ) -> SignerCheck:
        """The verdict on one signature."""
        known = self._keys.get(signature.keyid)
        if known is None:
            return SignerCheck(signature.keyid, SignerStatus.UNKNOWN_KEY)
        revoked = known.revoked_as_of(at)
        if not signature.verifies(known.key, manifest_bytes):
            status = SignerStatus.INVALID
        else:
            status = SignerStatus.REVOKED if revoked else SignerStatus.VERIFIED
        return SignerCheck(signature.keyid, status, known, key_revoked=revoked)

    def verify(
        self,
        manifest_bytes: bytes,
        signatures: Iterable[Signature],
        *,
        at: datetime | None = None,
        threshold: int = 1,
    ) -> Verification:
        """Judge every signature; never raises for bad ones (see ``raise_for_status``)."""
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        checks = tuple(self.check(s, manifest_bytes, at=at) for s in signatures)
        return Verification(checks, threshold)

    def verify_or_raise(
        self,
        manifest_bytes: bytes,
        signatures: Iterable[Signature],
        *,
        at: datetime | None = None,
        threshold: int = 1,
    ) -> Verification:
        """Like :meth:`verify`, but raise a :class:`SignatureError` unless the result is ok."""
        return self.verify(
            manifest_bytes, signatures, at=at, threshold=threshold
        ).raise_for_status()


#: The name of :class:`Verification` before revocations were part of the rule.
VerificationResult = Verification


def _as_trusted(trusted: Iterable[PublicKey] | Mapping[str, PublicKey]) -> TrustedKeys:
    keys = trusted.values() if isinstance(trusted, Mapping) else trusted
    return TrustedKeys.of(keys)


def verify_signatures(
    manifest_bytes: bytes,
    signatures: Iterable[Signature],
    trusted: Iterable[PublicKey] | Mapping[str, PublicKey],
    *,
    threshold: int = 1,
) -> Verification:
    """Judge signatures against plain keys (no revocations); never raises for bad ones.

    A signature by a trusted key that does not verify makes the result fail
    even if other signatures are valid: the pack has been tampered with.
    """
    return _as_trusted(trusted).verify(manifest_bytes, signatures, threshold=threshold)


def verify_or_raise(
    manifest_bytes: bytes,
    signatures: Iterable[Signature],
    trusted: Iterable[PublicKey] | Mapping[str, PublicKey],
    *,
    threshold: int = 1,
) -> Verification:
    """Like :func:`verify_signatures`, but raise a :class:`SignatureError` unless ``ok``."""
    return _as_trusted(trusted).verify_or_raise(manifest_bytes, signatures, threshold=threshold)
