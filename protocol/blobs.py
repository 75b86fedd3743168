"""A manifest's blobs: what a client can fetch, and which of them a given model needs.

In MIP 2 (SPEC section 14.1) a payload's content is a *blob* named by its
sha256; payloads with the same content are one blob. These helpers read the
blob list off any manifest, MIP 1.x or 2.x (a 1.x payload's content is a blob
too, it just travels inside the gzip'd tar), so a client decides what to fetch
before fetching a byte:

>>> entries = manifest_blobs(manifest)                 # doctest: +SKIP
>>> wanted = select_blobs(manifest, fingerprint=fp)    # doctest: +SKIP

:func:`select_blobs` keeps every plaintext blob and the activation/parameter
blobs whose cube is bound to the model with fingerprint digest ``fingerprint``
(section 5.3, :meth:`protocol.ModelFingerprint.digest`).

Not here: reading or writing containers (:mod:`protocol.archive`), fetching
(the runtime's pack sources).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._blob_rules import check_blob_conflicts, iter_payloads
from ._cube import MemoryType
from .manifest import Manifest

__all__ = ["BlobEntry", "manifest_blobs", "select_blobs"]


@dataclass(frozen=True)
class BlobEntry:
    """One distinct blob of a manifest.

    ``cubes`` are the ids of the cubes whose payloads carry it (sorted);
    ``fingerprint`` is the fingerprint digest of those cubes for an
    activation/parameter blob (``None`` for plaintext). A blob shared by
    cubes bound to different models (an identical adapter config, say) lists
    every digest in ``fingerprints`` and has the smallest as ``fingerprint``.
    ``paths`` are the payload paths that carry the blob (sorted).
    """

    sha256: str
    size: int
    media_type: str
    cubes: tuple[str, ...]
    fingerprint: str | None
    fingerprints: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @property
    def is_tensor_bound(self) -> bool:
        """True for activation/parameter blobs: only some models can use them."""
        return bool(self.fingerprints)

    def usable_by(self, fingerprint: str | None) -> bool:
        """Whether a runtime whose model has this fingerprint digest uses the blob."""
        return not self.fingerprints or fingerprint in self.fingerprints


def manifest_blobs(manifest: Manifest) -> tuple[BlobEntry, ...]:
    """Every distinct blob of ``manifest``, sorted by digest.

    Raises :class:`protocol.ManifestError` ``manifest.blob_conflict`` when one
    digest is named with two sizes or media types (a 2.x manifest never gets
    this far: the parser refuses it).
    """
    check_blob_conflicts(manifest.cubes)
    cubes: dict[str, set[str]] = {}
    prints: dict[str, set[str]] = {}
    paths: dict[str, set[str]] = {}
    first: dict[str, tuple[int, str]] = {}
    bound: set[str] = set()
    for cube, ref in iter_payloads(manifest.cubes):
        first.setdefault(ref.sha256, (ref.size, ref.media_type))
        cubes.setdefault(ref.sha256, set()).add(cube.id)
        paths.setdefault(ref.sha256, set()).add(ref.path)
        found = prints.setdefault(ref.sha256, set())
        if cube.memory_type is not MemoryType.PLAINTEXT:
            bound.add(ref.sha256)
            if cube.model is not None:
                found.add(cube.model.digest())
    entries = []
    for digest in sorted(first):
        size, media_type = first[digest]
        digests = tuple(sorted(prints[digest]))
        if digest in bound and not digests:  # pragma: no cover - the schema requires a model
            digests = ("",)
        entries.append(
            BlobEntry(
                sha256=digest,
                size=size,
                media_type=media_type,
                cubes=tuple(sorted(cubes[digest])),
                fingerprint=digests[0] if digests else None,
                fingerprints=digests,
                paths=tuple(sorted(paths[digest])),
            )
        )
    return tuple(entries)


def select_blobs(
    manifest: Manifest, *, fingerprint: str | None, everything: bool = False
) -> tuple[BlobEntry, ...]:
    """The blobs a runtime running the model ``fingerprint`` fetches, sorted by digest.

    Every plaintext blob; an activation/parameter blob only when one of its
    cubes is bound to ``fingerprint`` (a fingerprint digest), or every blob
    with ``everything=True`` (``memos install --all``). ``fingerprint=None``
    (no model configured) selects the plaintext blobs only.
    """
    blobs = manifest_blobs(manifest)
    if everything:
        return blobs
    return tuple(b for b in blobs if b.usable_by(fingerprint))
