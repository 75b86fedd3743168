"""The repository's signers: offline root keys (files) and the online key (settings).

Keys are Ed25519 PKCS#8 PEM files. The online key (timestamp, snapshot,
targets, namespace roles) is ``MEMSTORE_TUF_ONLINE_KEY``, or, on the
embedded default, ``<data dir>/tuf/online.pem``. The root key stays offline
(``manage.py tuf_init --root-key FILE``); only the demo mode
(``MEMSTORE_TUF_DEMO=1``, the default for a local registry) writes one,
``<data dir>/tuf/DEMO-root.pem``, so that everything works from a clean
clone -- clearly a demo: whoever can read the data dir can re-sign the root.

Not here: which role each key signs (:mod:`.repository`).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from securesystemslib.signer import CryptoSigner, Signer

__all__ = ["DEMO_ROOT", "generate_key_file", "key_dir", "load_signer", "online_signer"]

DEMO_ROOT = "DEMO-root.pem"


def key_dir() -> Path:
    return Path(settings.MEMSTORE_TUF_KEY_DIR)


def generate_key_file(path: Path) -> Path:
    """A new Ed25519 private key at ``path`` (mode 0600), unless one is there."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return path


def load_signer(path: Path) -> Signer:
    """A signer over the PEM private key at ``path``."""
    private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return CryptoSigner(private)


_ONLINE: dict[Path, Signer] = {}


def online_signer() -> Signer:
    """The online key (created on the embedded default when missing)."""
    configured = settings.MEMSTORE_TUF_ONLINE_KEY
    path = Path(configured) if configured else key_dir() / "online.pem"
    if path not in _ONLINE:
        if not configured:
            generate_key_file(path)
        _ONLINE[path] = load_signer(path)
    return _ONLINE[path]
