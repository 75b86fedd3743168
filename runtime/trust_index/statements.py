"""Bootstrap and key statements: pin a registry's root; endorse a key; declare one compromised.

:func:`pin_registry` is ``memos registry add`` and ``memos login``'s pin:
the root from a file, or the registry's ``1.root.json`` checked against a
fingerprint, or pinned on first use; then one refresh, so a registry whose
current root does not chain to the pin is refused at once.

:func:`endorse` and :func:`declare_compromised` send the namespace owner's
statements to the registry (``/api/v1/tuf/namespaces/<ns>/keys/<keyid>/...``),
which copies them into the namespace's delegation.

Not here: verifying the index (:mod:`.index`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from protocol import PublicKey, SigningKey
from protocol.endorsement import endorse_key

from ..client import RegistryClient
from ..errors import TrustError
from .index import TrustIndex

__all__ = ["Pinned", "declare_compromised", "endorse", "pin_registry"]


@dataclass(frozen=True)
class Pinned:
    registry: str
    fingerprint: str
    first_use: bool  # pinned now, by trusting what the registry served


def pin_registry(
    home: Path, registry: str, client: RegistryClient, *, root: bytes | None = None,
    root_sha256: str | None = None, required: bool = True,
) -> Pinned | None:  # fmt: skip
    """Pin ``registry`` (see the module docstring); None when it serves no index and
    ``required`` is false."""
    index = TrustIndex(home, registry, client)
    with index.locked():
        pinned = index.pinned()
        first_use = False
        if pinned is None or root is not None or root_sha256 is not None:
            data = root if root is not None else index.fetch_first_root()
            if data is None:
                if not required:
                    return None
                raise TrustError(f"{registry} serves no signed index (TUF)",
                                 code="trust.unavailable")  # fmt: skip
            first_use = pinned is None and root is None and root_sha256 is None
            pinned = index.pin(data, expected_sha256=root_sha256)
        index.refresh()
    return Pinned(registry, pinned, first_use)


def _keys_path(namespace: str, keyid: str, action: str) -> str:
    ns, kid = quote(namespace, safe=""), quote(keyid, safe="")
    return f"api/v1/tuf/namespaces/{ns}/keys/{kid}/{action}"


def _post(client: RegistryClient, path: str, body: dict[str, Any]) -> Any:
    # RegistryClient's one request path (error codes, JSON): these endpoints are the trust
    # index's own, so they live here rather than in the general client.
    return client.request_json("POST", path, upload=True, json=body)


def endorse(
    client: RegistryClient, namespace: str, new_key: PublicKey, by: SigningKey
) -> dict[str, Any]:
    """Have ``by`` (a key the namespace already has) endorse ``new_key`` on the registry."""
    signature = endorse_key(namespace, new_key, by)
    data = _post(client, _keys_path(namespace, new_key.keyid, "endorse"),
                 {"signature": signature.to_dict()})  # fmt: skip
    return data if isinstance(data, dict) else {}


def declare_compromised(
    client: RegistryClient, namespace: str, keyid: str, since: datetime
) -> dict[str, Any]:
    """Declare ``keyid`` compromised since ``since`` (it is revoked too)."""
    data = _post(client, _keys_path(namespace, keyid, "compromised"), {"since": since.isoformat()})
    return data if isinstance(data, dict) else {}
