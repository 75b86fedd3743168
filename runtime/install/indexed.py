"""The install step that asks the registry's TUF index before trusting its answer.

:func:`vouch`: a registry pinned before (``memos registry add``, ``memos
login``, or a first install) must serve its index; one never pinned that
serves none is installed from as before, with the warning "verified by
publisher signature only"; one that serves an index is pinned on first use
(the note says so, with the fingerprint). Then: refresh the index, look the
answered version up, check the answer against it (:func:`.trust.check_indexed`,
:func:`.trust.check_answer` with the index's "yanked") and take the keys from
the namespace's delegation (:func:`.trust.trust_indexed`).

Not here: the rules (:mod:`.trust`), the index (:mod:`runtime.trust_index`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from protocol import PackRef, PublicKey, TrustedKeys

from .._wire import Resolution
from ..trust_index import TrustIndex
from .trust import check_answer, check_indexed, trust_indexed, trust_resolution

__all__ = ["SIGNATURE_ONLY", "vouch"]

SIGNATURE_ONLY = "verified by publisher signature only"


def vouch(
    index: TrustIndex, ref: PackRef, res: Resolution, installed: str | None,
    pins: Sequence[PublicKey], *, stage: Callable[[str], None] = lambda _: None,
) -> tuple[Resolution, TrustedKeys, tuple[str, ...]]:  # fmt: skip
    """The answer as the index vouches for it (yanked from the index), the keys, and notes."""
    registry = index.registry
    notes: list[str] = []
    with index.locked():
        if index.pinned() is None:
            root = index.fetch_first_root()
            if root is None:
                return res, trust_resolution(res, pins), (
                    f"{SIGNATURE_ONLY}: {registry} serves no signed index (TUF), so its keys "
                    "come from its unsigned answer",
                )  # fmt: skip
            fingerprint = index.pin(root)
            notes.append(f"pinned {registry}'s root on first use: sha256 {fingerprint}")
        stage("refreshing the registry's signed index (TUF)")
        index.refresh()
        entry = index.lookup(ref.name, res.manifest.version)
        res = check_indexed(ref, res, entry, index.versions(ref.name))
        check_answer(ref, res, installed)
        namespace = index.publisher_keys(ref.name.split("/", 1)[0])
        keys = trust_indexed(res, namespace, entry, pins)
    return res, keys, tuple(notes)
