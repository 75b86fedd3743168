"""The installer's trust step: which keys decide an install, and whether they accept it.

Pure: no I/O, no clock. Given a resolve answer, the keys pinned by the user
or by ``memos.lock``, and later the pack that was downloaded, each function
returns the :class:`protocol.TrustedKeys` to judge with, or raises with a
stable code. The rule itself (verified / revoked / invalid / unknown, and the
``signature.*`` codes) is :mod:`protocol.trust`'s; revocations are judged
with no time (``at=None``), so a key revoked at all signs nothing.

* :func:`trust_resolution`: ``memos install NS/NAME`` -- the namespace's keys
  from the resolve answer (a revoked key stays known, as revoked, so a pack
  signed only by it is ``signature.revoked_key``), then every pinned
  ``$MEMOS_HOME/trusted-keys`` key, if any, must accept the signatures too.
* :func:`trust_locked`: ``memos install --locked`` -- the resolve answer must
  be the locked bytes (``install.lock_mismatch``), and only the keys pinned in
  ``memos.lock`` count, minus any the registry has revoked since.
* :func:`check_answer`: the resolve answer is for what was asked -- the
  signed manifest names the pack asked for (``install.wrong_pack``), its
  version is inside the range asked for (``install.version_out_of_range``), a
  yanked version is taken only when pinned exactly (``install.yanked``), and
  a range never moves an installed pack to an older version
  (``install.rollback``). The manifest's name and version count, not the
  answer's unsigned fields, which must agree with them.
* :func:`check_indexed`: with the registry's TUF index (:mod:`runtime.trust_index`),
  the signed manifest must be the index's target for that version, length
  and sha256 (``trust.target_mismatch``), the answer must be the newest
  version the index lists inside the range (``trust.not_latest``), and
  "yanked" is the index's, not the answer's;
* :func:`trust_indexed`: the keys are the namespace's from the index (pinned
  on first use, new ones only endorsed), judged at the version's signed
  publication time: a key revoked (or compromised) later still accepts it
  (``trust.key_not_endorsed`` for a signature by a key no trusted key endorsed).
* :func:`check_source`: a pack source's manifest (a downloaded or local
  pack file, a registry's or OCI registry's manifest) must be byte-for-byte
  the one that was trusted, if any (``install.manifest_mismatch``), and its
  own signatures must verify under the keys -- before any blob is fetched.

Not here: where pinned keys are read from, downloading, or committing
(:mod:`runtime.install.installer`, :mod:`runtime.install.commit`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from protocol import (
    Pack,
    PackRef,
    PublicKey,
    Signature,
    TrustedKey,
    TrustedKeys,
    Verification,
    Version,
)

from .._wire import Resolution
from ..errors import InstallError, TrustError
from ..lockfile import LockEntry
from ..trust_index import IndexedVersion, NamespaceKeys

__all__ = [
    "check_answer",
    "check_indexed",
    "check_pack",
    "check_source",
    "local_keys",
    "manifest_sha256",
    "namespace_keys",
    "trust_indexed",
    "trust_locked",
    "trust_resolution",
]


def manifest_sha256(data: bytes) -> str:
    """sha256 of canonical manifest bytes (as the registry's ``manifest_sha256``)."""
    return hashlib.sha256(data).hexdigest()


def namespace_keys(res: Resolution) -> TrustedKeys:
    """The namespace's keys in a resolve answer; revoked ones known as revoked."""
    return TrustedKeys(TrustedKey(k.public_key, revoked=k.revoked, label=k.label) for k in res.keys)


def local_keys(keys: Sequence[PublicKey]) -> TrustedKeys:
    """Keys given for a local file (``--trusted-key`` or pinned): no revocations known."""
    return TrustedKeys.of(keys)


def check_answer(ref: PackRef, res: Resolution, installed: str | None) -> None:
    """Refuse a resolve answer that is not for ``ref`` (see the module docstring).

    ``installed``: the version of the pack installed now, if any. A registry
    (or the network in front of it) could otherwise answer a request for
    ``acme/tips@^2`` with another pack its keys also sign, an old version with
    a known flaw, or a version its publisher withdrew.
    """
    signed = res.manifest
    if signed.name != ref.name or res.name != ref.name:
        raise InstallError(
            f"asked for {ref.name}, the registry answered with {signed.name}: refused",
            code="install.wrong_pack", asked=ref.name, answered=signed.name,
        )  # fmt: skip
    version = Version.parse(signed.version)
    if res.version != signed.version or not ref.spec.contains(version):
        raise InstallError(
            f"asked for {ref.name}@{ref.spec.text}, the registry answered with version "
            f"{signed.version}: refused",
            code="install.version_out_of_range", asked=ref.spec.text, answered=signed.version,
        )  # fmt: skip
    if res.yanked and not ref.spec.is_exact:
        raise InstallError(
            f"{ref.name}@{signed.version} is yanked and {ref.spec.text!r} is a range: refused",
            code="install.yanked", version=signed.version,
        )  # fmt: skip
    if installed is not None and not ref.spec.is_exact and version < Version.parse(installed):
        raise InstallError(
            f"{ref.name}@{installed} is installed; the registry offers only {signed.version} "
            f"for {ref.spec.text!r}: refused (a rollback)",
            code="install.rollback", installed=installed, answered=signed.version,
        )  # fmt: skip


def trust_resolution(res: Resolution, pins: Sequence[PublicKey]) -> TrustedKeys:
    """The keys to install ``res`` with, after they (and any ``pins``) accept its signatures."""
    keys = namespace_keys(res)
    keys.verify_or_raise(res.manifest_bytes, res.signatures)
    if pins:
        local_keys(pins).verify_or_raise(res.manifest_bytes, res.signatures)
    return keys


def check_indexed(
    ref: PackRef, res: Resolution, entry: IndexedVersion, listed: Sequence[IndexedVersion]
) -> Resolution:
    """``res`` with the index's word on yanking, once its manifest is the index's target.

    ``entry``: the index's target for the version answered; ``listed``: every
    version of the pack the index lists (a registry that answers an older
    version than the newest one in range is holding the client back).
    """
    if not entry.matches(res.manifest_bytes) or (
        entry.pack_sha256 and res.pack.url and res.pack.sha256 != entry.pack_sha256
    ):
        raise TrustError(
            f"{res.name}@{res.version} is not what the registry's signed index lists "
            f"(manifest sha256 {entry.sha256[:12]}…): refused",
            code="trust.target_mismatch", name=res.name, version=res.version,
        )  # fmt: skip
    answered = Version.parse(res.version)
    newer = [
        v.version for v in listed
        if ref.spec.contains(Version.parse(v.version)) and Version.parse(v.version) > answered
        and (not v.yanked or ref.spec.is_exact)
    ]  # fmt: skip
    if newer:
        raise TrustError(
            f"the registry answered {res.name}@{res.version} for {ref.spec.text!r}; its signed "
            f"index lists {max(newer, key=Version.parse)}: refused",
            code="trust.not_latest", answered=res.version,
        )  # fmt: skip
    return replace(res, yanked=entry.yanked, yanked_reason=entry.yanked_reason)


def keys_at(keys: Sequence[TrustedKey], at: datetime | None) -> TrustedKeys:
    """``keys`` as they stood at ``at``: revoked then, or not revoked at all."""
    return TrustedKeys(TrustedKey(k.key, revoked=k.revoked_as_of(at), label=k.label) for k in keys)


def trust_indexed(
    res: Resolution, namespace: NamespaceKeys, entry: IndexedVersion, pins: Sequence[PublicKey]
) -> TrustedKeys:
    """The keys to install ``res`` with: the index's for its namespace, at its publication."""
    keys = keys_at(namespace.entries, entry.published_at)
    verification = keys.verify(res.manifest_bytes, res.signatures)
    if not verification.ok and any(s.keyid in namespace.unendorsed for s in res.signatures):
        raise TrustError(
            f"{res.name}@{res.version} is signed by a key the registry lists for the namespace "
            "that no key you already trust endorsed: refused (a key substitution?)",
            code="trust.key_not_endorsed",
            keyids=sorted(s.keyid for s in res.signatures if s.keyid in namespace.unendorsed),
        )
    verification.raise_for_status()
    if pins:
        local_keys(pins).verify_or_raise(res.manifest_bytes, res.signatures)
    return keys


def trust_locked(res: Resolution, entry: LockEntry, pinned: Sequence[PublicKey]) -> TrustedKeys:
    """The keys to install ``res`` with under ``memos.lock``'s ``entry`` (keys ``pinned``)."""
    if (
        res.version != entry.version
        or res.pack.sha256 != entry.sha256
        or manifest_sha256(res.manifest_bytes) != entry.manifest_sha256
    ):
        raise InstallError(
            f"{entry.name}@{entry.version} on the registry differs from memos.lock "
            f"(pack {res.pack.sha256[:12]}…, locked {entry.sha256[:12]}…): refused",
            code="install.lock_mismatch",
        )
    revoked = {k.keyid: k for k in res.keys if k.revoked}
    pinned_ids = {k.keyid for k in pinned}
    keys = TrustedKeys(
        [
            *(TrustedKey(k, revoked=k.keyid in revoked) for k in pinned),
            *(
                TrustedKey(k.public_key, revoked=True, label=k.label)
                for k in revoked.values()
                if k.keyid not in pinned_ids
            ),
        ]
    )
    keys.verify_or_raise(res.manifest_bytes, res.signatures)
    return keys


def check_source(
    manifest_bytes: bytes,
    signatures: Sequence[Signature],
    keys: TrustedKeys,
    *,
    expected_manifest: bytes | None,
) -> Verification:
    """Accept a source's signed manifest (before any of its blobs is fetched) or raise."""
    if expected_manifest is not None and manifest_bytes != expected_manifest:
        raise InstallError(
            "the downloaded pack's manifest is not the one the registry signed: refused",
            code="install.manifest_mismatch",
        )
    return keys.verify_or_raise(manifest_bytes, signatures)


def check_pack(pack: Pack, keys: TrustedKeys, *, expected_manifest: bytes | None) -> Verification:
    """:func:`check_source` for a pack that was read (limits and digests already checked)."""
    return check_source(
        pack.manifest_bytes, pack.signatures, keys, expected_manifest=expected_manifest
    )
