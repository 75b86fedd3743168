"""Which blobs of a manifest the installer fetches: protocol's ``BlobEntry``/``select_blobs``.

The rule is the protocol's (:mod:`protocol.blobs`): every plaintext blob;
activation and parameter blobs only for the running model's fingerprint
digest, or all with ``everything``. Re-exported here so the installer's
modules and other pack sources (:mod:`runtime.oci`) name one place.

Not here: fetching (:mod:`runtime.install.fetch`), trust (:mod:`.trust`).
"""

from __future__ import annotations

from protocol import BlobEntry, manifest_blobs, select_blobs

__all__ = ["BlobEntry", "manifest_blobs", "select_blobs"]
