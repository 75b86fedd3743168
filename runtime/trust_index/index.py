"""One registry's TUF index on this machine: the pinned root, verified metadata, pinned keys.

:class:`TrustIndex` wraps ``tuf.ngclient.Updater`` for one registry
(metadata base URL ``<registry>/api/v1/tuf/``, consistent snapshots), with
the trusted metadata persisted under ``$MEMOS_HOME/trust/<origin hash>/``:

* ``pin.json``: the registry URL and the sha256 of the root it was pinned
  with (``memos registry add`` prints it; first use pins it, like SSH);
* ``metadata/``: ngclient's trusted metadata (``root_history/`` chains every
  root rotation from the pin: a root not signed by its predecessor is refused);
* ``namespaces/<ns>.json``: the namespace's publisher keys as first seen,
  plus every key accepted later with an endorsement by one already trusted
  (see :meth:`TrustIndex.publisher_keys`); revocations only ever tighten.

Every refusal is a :class:`~runtime.errors.TrustError` with a ``trust.*``
code (:data:`TUF_CODES` maps python-tuf's exceptions).

Not here: the install decision (:mod:`runtime.install.trust`), HTTP
(:mod:`runtime.client`, :mod:`._fetcher`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from filelock import FileLock
from tuf.api import exceptions
from tuf.api.metadata import Metadata, Root, TargetFile, Targets
from tuf.ngclient import Updater, UpdaterConfig

from protocol import MIPError, PublicKey, Signature, TrustedKey, TrustedKeys
from protocol.endorsement import endorsement_valid

from ..client import RegistryClient
from ..credentials import origin_of
from ..errors import RegistryError, TrustError
from ._fetcher import DEFAULT_DEADLINE_S, RegistryFetcher

__all__ = ["TUF_CODES", "IndexedVersion", "NamespaceKeys", "TrustIndex", "root_fingerprint"]

METADATA_PATH = "api/v1/tuf/"
PUBLISHER_KEYS = "x-memstore-publisher-keys"  # memstore.tuf.repository.PUBLISHER_KEYS
LOG_KEYS = "x-memstore-log-keys"  # memstore.tuf.repository.LOG_KEYS, in root.json

#: python-tuf exception -> our code (the most specific class first).
TUF_CODES: tuple[tuple[type[Exception], str], ...] = (
    (exceptions.ExpiredMetadataError, "trust.expired"),
    (exceptions.BadVersionNumberError, "trust.rollback"),
    (exceptions.EqualVersionNumberError, "trust.rollback"),
    (exceptions.UnsignedMetadataError, "trust.bad_signature"),
    (exceptions.LengthOrHashMismatchError, "trust.mismatch"),
    (exceptions.DownloadLengthMismatchError, "trust.too_long"),
    (exceptions.SlowRetrievalError, "trust.slow_retrieval"),
    (exceptions.DownloadHTTPError, "trust.unavailable"),
    (exceptions.DownloadError, "trust.unavailable"),
    (exceptions.RepositoryError, "trust.bad_metadata"),
)


def _tuf_error(exc: Exception, registry: str) -> TrustError:
    code = next((c for cls, c in TUF_CODES if isinstance(exc, cls)), "trust.bad_metadata")
    return TrustError(
        f"the trust index of {registry} refused its metadata: {exc}", code=code, registry=registry
    )


def root_fingerprint(root_bytes: bytes) -> str:
    """The pinned fingerprint: sha256 of the root file's bytes, as ``memos registry add`` shows."""
    return hashlib.sha256(root_bytes).hexdigest()


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _earliest(*values: datetime | None) -> datetime | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


@dataclass(frozen=True)
class IndexedVersion:
    """A pack version as the signed index lists it (the manifest's length and sha256)."""

    name: str
    version: str
    length: int
    sha256: str
    published_at: datetime | None
    yanked: bool
    yanked_reason: str = ""
    pack_sha256: str = ""
    pack_size: int = 0

    @classmethod
    def from_target(cls, name: str, version: str, target: TargetFile) -> IndexedVersion:
        custom = target.custom if isinstance(target.custom, dict) else {}
        pack = custom.get("pack") if isinstance(custom.get("pack"), dict) else {}
        assert isinstance(pack, dict)
        return cls(
            name, version, target.length, target.hashes.get("sha256", ""),
            _when(custom.get("published_at")), custom.get("yanked") is True,
            str(custom.get("yanked_reason", "")), str(pack.get("sha256", "")),
            int(pack.get("size", 0) or 0),
        )  # fmt: skip

    def matches(self, manifest_bytes: bytes) -> bool:
        return (
            len(manifest_bytes) == self.length
            and hashlib.sha256(manifest_bytes).hexdigest() == self.sha256
        )


@dataclass(frozen=True)
class NamespaceKeys:
    """The keys to judge a namespace's packs with, and the listed keys not trusted."""

    entries: tuple[TrustedKey, ...]
    #: keyids the registry lists for the namespace that no trusted key endorsed
    unendorsed: frozenset[str]
    first_use: bool

    @property
    def keys(self) -> TrustedKeys:
        return TrustedKeys(self.entries)


@dataclass
class _PinnedKey:
    public_key: str
    revoked_at: datetime | None = None
    compromised_since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "public_key": self.public_key,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "compromised_since": (
                self.compromised_since.isoformat() if self.compromised_since else None
            ),
        }


def _listed(namespace: str, raw: Any) -> dict[str, tuple[PublicKey, dict[str, Any]]]:
    """The delegation's publisher keys whose keyid is their own (others are ignored)."""
    found: dict[str, tuple[PublicKey, dict[str, Any]]] = {}
    for item in raw if isinstance(raw, list) else []:
        try:
            key = PublicKey.from_text(str(item["public_key"]))
        except (KeyError, TypeError, MIPError):
            continue
        if item.get("keyid") in (None, key.keyid):
            found[key.keyid] = (key, item)
    return found


def _endorsed_by(namespace: str, key: PublicKey, item: dict[str, Any],
                 trusted: dict[str, _PinnedKey]) -> bool:  # fmt: skip
    raw = item.get("endorsement")
    if not isinstance(raw, dict) or raw.get("keyid") not in trusted:
        return False
    endorser = trusted[str(raw["keyid"])]
    if endorser.compromised_since is not None:
        return False
    try:
        signature = Signature(str(raw["keyid"]), base64.b64decode(str(raw["sig"]), validate=True))
    except (KeyError, binascii.Error, ValueError):
        return False
    return endorsement_valid(namespace, key, signature, PublicKey.from_text(endorser.public_key))


class TrustIndex:
    """The TUF index of one registry (see the module docstring). Use as a context manager
    around one install: it holds the folder's lock."""

    def __init__(
        self, home: Path, registry: str, client: RegistryClient, *,
        deadline_s: float = DEFAULT_DEADLINE_S,
    ) -> None:  # fmt: skip
        self.registry = registry.rstrip("/")
        scheme, host, port = origin_of(self.registry)
        origin = f"{scheme}://{host}:{port}"
        path = origin + "/" + self.registry.split("://", 1)[-1].partition("/")[2]
        self.folder = Path(home) / "trust" / hashlib.sha256(path.encode()).hexdigest()[:24]
        self.metadata_dir = self.folder / "metadata"
        self.client = client
        self.fetcher = RegistryFetcher(client, deadline_s=deadline_s)
        self._updater: Updater | None = None

    # ------------------------------------------------------------------ pin

    @property
    def pin_path(self) -> Path:
        return self.folder / "pin.json"

    def pinned(self) -> str | None:
        """The pinned root fingerprint, or None when this registry was never pinned."""
        try:
            data = json.loads(self.pin_path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        value = data.get("root_sha256") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    def fetch_first_root(self) -> bytes | None:
        """The registry's ``1.root.json``, or None when it serves no TUF index (404)."""
        try:
            with self.client.stream(METADATA_PATH + "1.root.json") as response:
                if response.status_code != 200:
                    return None
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > UpdaterConfig().root_max_length:
                        raise TrustError("the root metadata is too long", code="trust.too_long")
                return data
        except RegistryError as exc:
            # Any error answer: no index (a registry never pinned could as well answer 404,
            # so nothing is lost; once pinned, the index is required, see refresh()).
            if exc.status is not None:
                return None
            raise

    def pin(self, root_bytes: bytes, *, expected_sha256: str | None = None) -> str:
        """Pin ``root_bytes`` (refused unless it is a self-signed root matching
        ``expected_sha256`` when given); its fingerprint."""
        fingerprint = root_fingerprint(root_bytes)
        if expected_sha256 is not None and fingerprint != expected_sha256.lower():
            raise TrustError(
                f"the root of {self.registry} has fingerprint {fingerprint}, "
                f"not {expected_sha256}: refused",
                code="trust.root_mismatch", fingerprint=fingerprint,
            )  # fmt: skip
        try:
            md = Metadata[Root].from_bytes(root_bytes)
            if not isinstance(md.signed, Root):
                raise exceptions.RepositoryError("not a root")
            md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
        except Exception as exc:
            raise TrustError(
                f"{self.registry} does not serve a valid root: {exc}", code="trust.bad_root"
            ) from exc
        current = self.pinned()
        if current is not None and current != fingerprint:
            raise TrustError(
                f"{self.registry} is pinned to root {current}; it now offers {fingerprint}",
                code="trust.root_mismatch", fingerprint=fingerprint, pinned=current,
            )  # fmt: skip
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        if current is None:
            Updater(str(self.metadata_dir), self._base_url(), fetcher=self.fetcher,
                    bootstrap=root_bytes)  # fmt: skip
            _write_json(self.pin_path, {"registry": self.registry, "root_sha256": fingerprint})
        return fingerprint

    # ------------------------------------------------------------------ metadata

    def _base_url(self) -> str:
        return self.client.absolute(METADATA_PATH)

    @contextmanager
    def locked(self) -> Iterator[TrustIndex]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / ".lock")):
            yield self

    def refresh(self) -> None:
        """Fetch and verify timestamp, snapshot and targets (one round trip when nothing changed:
        ``timestamp.json``); new roots must chain to the pinned one."""
        if self.pinned() is None:
            raise TrustError(f"{self.registry} is not pinned", code="trust.not_pinned")
        try:
            self._updater = Updater(
                str(self.metadata_dir), self._base_url(), fetcher=self.fetcher, bootstrap=None
            )
            self._updater.refresh()
        except TrustError:
            raise
        except (exceptions.RepositoryError, exceptions.DownloadError) as exc:
            raise _tuf_error(exc, self.registry) from exc
        finally:
            self.fetcher.refresh_done()

    def lookup(self, name: str, version: str) -> IndexedVersion:
        """The index's entry for ``name@version`` (trust.unknown_target when it lists none)."""
        assert self._updater is not None, "refresh() first"
        try:
            target = self._updater.get_targetinfo(f"{name}/{version}/manifest.json")
        except (exceptions.RepositoryError, exceptions.DownloadError) as exc:
            raise _tuf_error(exc, self.registry) from exc
        if target is None:
            raise TrustError(
                f"{name}@{version} is not in the signed index of {self.registry}: refused",
                code="trust.unknown_target", name=name, version=version,
            )  # fmt: skip
        return IndexedVersion.from_target(name, version, target)

    def _trusted(self, role: str) -> Metadata[Targets]:
        """A targets role's metadata as ngclient verified and persisted it."""
        md: Metadata[Targets] = _parsed(self.metadata_dir / f"{quote(role, '')}.json")
        return md

    def versions(self, name: str) -> list[IndexedVersion]:
        """Every version of pack ``name`` the namespace's role lists (after :meth:`lookup`)."""
        namespace = name.split("/", 1)[0]
        prefix = f"{name}/"
        found = []
        for path, target in self._trusted(f"ns-{namespace}").signed.targets.items():
            parts = path.split("/")
            if path.startswith(prefix) and len(parts) == 4 and parts[3] == "manifest.json":
                found.append(IndexedVersion.from_target(name, parts[2], target))
        return found

    def log_keys(self) -> tuple[PublicKey, ...] | None:
        """The transparency log's tree-head keys that the verified root names (after
        :meth:`refresh`; root is signed by the offline root keys and chains to the pin), or
        None when it names none (a registry whose root predates the field, or none pinned)."""
        try:
            root: Metadata[Root] = _parsed(self.metadata_dir / "root.json")
        except (OSError, ValueError, exceptions.RepositoryError):
            return None
        raw = root.signed.unrecognized_fields.get(LOG_KEYS)
        if not isinstance(raw, list):
            return None
        keys = []
        for item in raw:
            try:
                keys.append(PublicKey.from_text(str(item)))
            except MIPError:
                continue  # a key this client cannot read names nothing it could check
        return tuple(keys)

    # ------------------------------------------------------------------ publisher keys

    def publisher_keys(self, namespace: str) -> NamespaceKeys:
        """The namespace's publisher keys: pinned on first use; a key listed later is trusted
        only with an endorsement by a trusted, uncompromised key; revocation and compromise
        dates only move earlier. Judged at a version's publication time, a key revoked at R
        (or compromised since C) accepts what was published before min(R, C)."""
        targets = self._trusted(Targets.type).signed
        delegations = targets.delegations
        roles = delegations.roles if delegations and delegations.roles else {}
        role = roles.get(f"ns-{namespace}")
        listed = _listed(namespace, role.unrecognized_fields.get(PUBLISHER_KEYS) if role else None)
        path = self.folder / "namespaces" / f"{namespace}.json"
        pinned = _read_pins(path)
        first_use = pinned is None
        trusted: dict[str, _PinnedKey] = {}
        if pinned is None:
            trusted = {kid: _PinnedKey(key.to_text()) for kid, (key, _) in listed.items()}
        else:
            trusted = pinned
            pending = {kid: v for kid, v in listed.items() if kid not in trusted}
            progress = True
            while pending and progress:
                progress = False
                for kid, (key, item) in list(pending.items()):
                    if _endorsed_by(namespace, key, item, trusted):
                        trusted[kid] = _PinnedKey(key.to_text())
                        del pending[kid]
                        progress = True
        for kid, pin in trusted.items():
            if kid in listed:
                item = listed[kid][1]
                pin.revoked_at = _earliest(pin.revoked_at, _when(item.get("revoked_at")))
                pin.compromised_since = _earliest(
                    pin.compromised_since, _when(item.get("compromised_since"))
                )
        _write_json(path, {kid: p.to_dict() for kid, p in sorted(trusted.items())})
        keys = tuple(
            TrustedKey(
                PublicKey.from_text(p.public_key),
                revoked_at=_earliest(p.revoked_at, p.compromised_since),
                label="compromised" if p.compromised_since else "",
            )
            for p in trusted.values()
        )
        return NamespaceKeys(keys, frozenset(set(listed) - set(trusted)), first_use)


#: path -> (bytes, parsed): the metadata files this process parsed, by content. Reading a
#: file is cheap and its bytes decide; parsing (and building the Metadata) is what a warm
#: install repeated on every install of a long-lived process (SDK, MCP server).
_PARSED: dict[Path, tuple[bytes, Metadata[Any]]] = {}


def _parsed(path: Path) -> Metadata[Any]:
    """``path``'s metadata, parsed once per content (read-only: callers never change it)."""
    data = path.read_bytes()
    cached = _PARSED.get(path)
    if cached is not None and cached[0] == data:
        return cached[1]
    md: Metadata[Any] = Metadata.from_bytes(data)
    if len(_PARSED) > 64:
        _PARSED.clear()
    _PARSED[path] = (data, md)
    return md


def _read_pins(path: Path) -> dict[str, _PinnedKey] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {
        str(kid): _PinnedKey(
            str(v["public_key"]), _when(v.get("revoked_at")), _when(v.get("compromised_since"))
        )
        for kid, v in data.items()
        if isinstance(v, dict) and isinstance(v.get("public_key"), str)
    }


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), "utf-8")
    os.replace(tmp, path)
