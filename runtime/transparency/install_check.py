"""The installer's log check: is the publication of what it installs in the registry's log?

Called once per install from the registry, after the trust decision and
before anything is downloaded. A registry that never served a log to this
``MEMOS_HOME`` and serves none now is installed from with a note (older
registries); one that served a log before and now serves none is refused
(``log.missing``), like one whose log omits the publication
(``log.not_included``) or contradicts what was seen (``log.inconsistent``).
Not here: the checks themselves (:mod:`.verifier`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from protocol import PublicKey

from ..client import RegistryClient
from ..errors import RegistryError
from .source import HttpLog
from .verifier import LogError, LogVerifier

__all__ = ["check_install_logged"]

#: What a registry without a log answers for ``/api/v1/log/...``.
NO_LOG_CODES = frozenset({"http.404", "registry.not_found"})


def check_install_logged(
    home: Path, registry: str, client: RegistryClient, *, name: str, version: str,
    manifest_bytes: bytes, root_keys: Sequence[PublicKey] | None = None,
) -> tuple[str, ...]:  # fmt: skip
    """Notes for the install result; raises :class:`LogError` when the log refuses.
    ``root_keys``: the log keys the registry's TUF root names (None: pinned on first use)."""
    verifier = LogVerifier(home, registry, HttpLog(client), root_keys=root_keys)
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    try:
        verifier.check_published(name=name, version=version, manifest_sha256=digest)
    except RegistryError as exc:
        if exc.code == "registry.log_entry_not_found":
            raise LogError(
                f"{name}@{version} is not in {registry}'s transparency log",
                code="log.not_included",
            ) from exc
        if exc.code not in NO_LOG_CODES:
            raise
        if verifier.kept_head() is not None:
            raise LogError(
                f"{registry} served a transparency log before and serves none now",
                code="log.missing",
            ) from exc
        return (f"not checked against a transparency log: {registry} serves none",)
    return ()
