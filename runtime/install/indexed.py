"""The install step that asks the registry's TUF index before trusting its answer.

:func:`vouch`: a registry pinned before (``memos registry add``, ``memos
login``, or a first install) must serve its index; one never pinned that
serves none is installed from as before, with the warning "verified by
publisher signature only"; one that serves an index is pinned on first use
(the note says so, with the fingerprint). Then: refresh the index, look the
answered version up, check the answer against it (:func:`.trust.check_indexed`,
:func:`.trust.check_answer` with the index's "yanked") and take the keys from
the namespace's delegation (:func:`.trust.trust_indexed`).

:func:`vouch_locked`: ``memos install --locked`` from a registry with an index
(pinned the same way) also needs the locked version to be the index's target,
byte for byte: the lockfile and the registry's answer agreeing is not enough
(a lock written from a lying answer, or handed over, would otherwise install a
build the registry never signed into its index). A registry with no index
keeps the "signature only" note; the lockfile's digests and keys decide.

Not here: the rules (:mod:`.trust`), the index (:mod:`runtime.trust_index`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from protocol import PackRef, PublicKey, TrustedKeys

from .._wire import Resolution
from ..trust_index import TrustIndex
from .trust import check_answer, check_indexed, trust_indexed, trust_resolution

__all__ = ["SIGNATURE_ONLY", "vouch", "vouch_locked"]

SIGNATURE_ONLY = "verified by publisher signature only"


def _pin_and_refresh(index: TrustIndex, notes: list[str], stage: Callable[[str], None]) -> bool:
    """Pin on first use (noted) and refresh; False when an unpinned registry serves no index.
    Call with the index's folder locked."""
    if index.pinned() is None:
        root = index.fetch_first_root()
        if root is None:
            return False
        fingerprint = index.pin(root)
        notes.append(f"pinned {index.registry}'s root on first use: sha256 {fingerprint}")
    stage("refreshing the registry's signed index (TUF)")
    index.refresh()
    return True


def vouch(
    index: TrustIndex, ref: PackRef, res: Resolution, installed: str | None,
    pins: Sequence[PublicKey], *, stage: Callable[[str], None] = lambda _: None,
) -> tuple[Resolution, TrustedKeys, tuple[str, ...]]:  # fmt: skip
    """The answer as the index vouches for it (yanked from the index), the keys, and notes."""
    registry = index.registry
    notes: list[str] = []
    with index.locked():
        if not _pin_and_refresh(index, notes, stage):
            return res, trust_resolution(res, pins), (
                f"{SIGNATURE_ONLY}: {registry} serves no signed index (TUF), so its keys "
                "come from its unsigned answer",
            )  # fmt: skip
        entry = index.lookup(ref.name, res.manifest.version)
        res = check_indexed(ref, res, entry, index.versions(ref.name))
        check_answer(ref, res, installed)
        namespace = index.publisher_keys(ref.name.split("/", 1)[0])
        keys = trust_indexed(res, namespace, entry, pins)
    return res, keys, tuple(notes)


def vouch_locked(
    index: TrustIndex, ref: PackRef, res: Resolution, *,
    stage: Callable[[str], None] = lambda _: None,
) -> tuple[Resolution, tuple[str, ...]]:  # fmt: skip
    """A locked answer (already the lockfile's bytes) checked against the index: the index's
    target for that version (``trust.unknown_target``, ``trust.target_mismatch``), with the
    index's word on yanking; and notes."""
    notes: list[str] = []
    with index.locked():
        if not _pin_and_refresh(index, notes, stage):
            return res, (
                f"{SIGNATURE_ONLY}: {index.registry} serves no signed index (TUF), so only "
                "memos.lock's digests and keys vouch for it",
            )  # fmt: skip
        entry = index.lookup(ref.name, res.manifest.version)
        res = check_indexed(ref, res, entry, ())
    return res, tuple(notes)
