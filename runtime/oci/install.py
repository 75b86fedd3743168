"""``memos install oci://HOST/REPO:TAG``: a pack from an OCI repository, through the installer.

:func:`install_from_oci` opens the reference as an :class:`~.source.OCIPackSource` (the OCI
manifest, the signed MIP manifest in its config and the signature layers; no payload blob) and
hands it to :meth:`runtime.install.Installer.install_from_source`, which decides trust on the
signed manifest with the given keys *before* it fetches any blob, then fetches only the blobs the
engine's model can use, several at once, each hashed into the cache as it arrives.

Packs installed from OCI are recorded like packs installed from a file (no MemStore registry:
``memos upgrade`` leaves them alone; install the new tag instead).

Not here: the trust rule (``protocol.TrustedKeys``), HTTP (:mod:`.client`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx

from protocol import PublicKey, TrustedKeys

from ..download import ProgressFn
from ..errors import InstallError
from ..install import Installer, InstallResult
from ..install.trust import manifest_sha256
from ..lockfile import LockEntry, update_lockfile
from .client import OCIClient
from .reference import parse_reference
from .source import OCIPackSource

__all__ = ["install_from_oci"]


def install_from_oci(
    installer: Installer,
    text: str,
    *,
    trusted_keys: Sequence[PublicKey] = (),
    plain_http: bool | None = None,
    transport: httpx.BaseTransport | None = None,
    auth: httpx.Auth | None = None,
    progress: ProgressFn | None = None,
    lockfile: Path | None = None,
    actor: str | None = None,
    everything: bool = False,
) -> InstallResult:
    """Install the pack at ``oci://...`` ``text``, trusted by ``trusted_keys`` (else the keys
    pinned in ``$MEMOS_HOME/trusted-keys``)."""
    reference = parse_reference(text)
    keys = list(trusted_keys) or installer.pinned_keys()
    if not keys:
        raise InstallError("no trusted key to verify a pack from an OCI registry with",
                           code="install.no_trusted_keys")  # fmt: skip
    with OCIClient.for_reference(
        reference, plain_http=plain_http, transport=transport, auth=auth
    ) as client:
        source = OCIPackSource.open(client, reference)
        result = installer.install_from_source(
            source, TrustedKeys.of(keys), actor=actor, label="oci", progress=progress,
            everything=everything,
        )  # fmt: skip
    if lockfile is not None:
        # Locked like a file's pack: the manifest and blobs are in the cache (--locked reuses them).
        signatures = tuple(s for s in source.signatures if s.keyid in result.signed_by)
        entry = LockEntry(
            result.name, result.version, result.sha256, result.size,
            manifest_sha256(source.manifest_bytes), result.signed_by,
            tuple(k.to_text() for k in keys if k.keyid in result.signed_by), None,
            blobs=result.blobs, signatures=signatures,
        )  # fmt: skip
        update_lockfile(lockfile, add={result.name: entry})
    return result
