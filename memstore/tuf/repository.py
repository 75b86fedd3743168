"""The registry's TUF repository as plain python-tuf objects: build, sign, serialise.

Pure (no Django, no database, no clock of its own): :class:`Repository`
holds the current root, targets, snapshot, timestamp and one delegated
targets role per namespace (``ns-<namespace>``), and re-signs exactly the
roles a change touches. :mod:`memstore.tuf.services` persists what it
returns; the malicious-registry simulator of the tests drives the same class
and then lies with the bytes.

Which key signs what (SPEC section 15):

* ``root``: the offline root keys (a threshold of them); a new root is
  signed by the old root's threshold and its own.
* ``timestamp``, ``snapshot``, ``targets`` and every ``ns-<namespace>``
  role: the registry's online key (short expiry for timestamp and snapshot).
* the packs themselves: the namespace's publisher keys (MIP 2 signatures),
  which ``targets`` lists in each namespace's delegation under
  :data:`PUBLISHER_KEYS`. The online key cannot make a client accept a new
  publisher key for a namespace the client has already seen: the client
  pins a namespace's keys on first use and takes a new one only with an
  endorsement signed by a key it already trusts (``runtime.trust_index``).

Not here: where keys live (:mod:`memstore.tuf.keys`), persistence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from securesystemslib.signer import Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

__all__ = [
    "EXPIRY",
    "LOG_KEYS",
    "OWNERS",
    "PUBLISHER_KEYS",
    "PublisherKey",
    "Repository",
    "VersionTarget",
    "namespace_role",
    "target_path",
]

#: Delegation field listing a namespace's publisher keys (MIP keys, not TUF keys).
PUBLISHER_KEYS = "x-memstore-publisher-keys"
#: Delegation field naming the namespace's owners (usernames, sorted): who may register
#: keys now. Informational for clients: a change of owner never makes a key trusted.
OWNERS = "x-memstore-owners"
#: Root field naming the transparency log's tree-head keys (``ed25519:<base64>``): signed
#: by the offline root keys, so neither the online key nor the web host can swap them.
LOG_KEYS = "x-memstore-log-keys"

EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=365),
    "namespace": timedelta(days=365),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}

_SERIALIZER = JSONSerializer(compact=True)


def namespace_role(namespace: str) -> str:
    """The delegated role of ``namespace`` (prefixed: a namespace may be called ``root``)."""
    return f"ns-{namespace}"


def target_path(name: str, version: str) -> str:
    """The TUF target path of pack ``NS/NAME`` at ``version``: its signed manifest."""
    return f"{name}/{version}/manifest.json"


@dataclass(frozen=True)
class VersionTarget:
    """One pack version as a target: the manifest's bytes (length, sha256) and custom data."""

    name: str
    version: str
    manifest_sha256: str
    manifest_length: int
    published_at: str
    yanked: bool = False
    yanked_reason: str = ""
    pack_sha256: str = ""  # MIP 1: the .memcube file the manifest came in
    pack_size: int = 0

    def to_target(self) -> TargetFile:
        custom: dict[str, Any] = {"published_at": self.published_at, "yanked": self.yanked}
        if self.yanked_reason:
            custom["yanked_reason"] = self.yanked_reason
        if self.pack_sha256:
            custom["pack"] = {"sha256": self.pack_sha256, "size": self.pack_size}
        path = target_path(self.name, self.version)
        return TargetFile(
            self.manifest_length, {"sha256": self.manifest_sha256}, path,
            unrecognized_fields={"custom": custom},
        )  # fmt: skip


@dataclass(frozen=True)
class PublisherKey:
    """A namespace's publisher key as the delegation lists it.

    ``endorsement``: the signature (``{"keyid", "sig"}``, a MIP signature) by
    ``endorsed_by``, an older key of the namespace, over
    ``protocol.key_endorsement_bytes`` -- what lets a client that pinned the
    older key accept this one. ``compromised_since``: the owner's statement
    that signatures from that time on are not theirs.
    """

    public_key: str  # "ed25519:<base64>"
    keyid: str
    created_at: str
    revoked_at: str | None = None
    compromised_since: str | None = None
    endorsement: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "keyid": self.keyid, "public_key": self.public_key, "created_at": self.created_at,
            "revoked_at": self.revoked_at, "compromised_since": self.compromised_since,
        }  # fmt: skip
        if self.endorsement is not None:
            data["endorsement"] = dict(self.endorsement)
        return data


def _signed_with(signed: Any, signers: Iterable[Signer]) -> Metadata[Any]:
    md: Metadata[Any] = Metadata(signed)
    for signer in signers:
        md.sign(signer, append=True)
    return md


def _meta_of(data: bytes, version: int) -> MetaFile:
    import hashlib

    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


@dataclass
class Repository:
    """The whole repository in memory; ``files`` maps served file names to their bytes."""

    online: Signer
    root: Metadata[Root]
    targets: Metadata[Targets]
    namespaces: dict[str, Metadata[Targets]] = field(default_factory=dict)
    snapshot: Metadata[Snapshot] | None = None
    timestamp: Metadata[Timestamp] | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    #: role -> the bytes of its latest version (for snapshot's and timestamp's digests)
    latest: dict[str, bytes] = field(default_factory=dict)

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(
        cls, *, root_signers: list[Signer], threshold: int, online: Signer, now: datetime,
        log_keys: Iterable[str] = (),
    ) -> Repository:  # fmt: skip
        """A new repository: root v1 (consistent snapshots), empty targets, snapshot, timestamp;
        the root names ``log_keys`` (:data:`LOG_KEYS`) when given."""
        root = Root(expires=now + EXPIRY["root"], consistent_snapshot=True)
        if log_keys:
            root.unrecognized_fields[LOG_KEYS] = sorted(log_keys)
        for signer in root_signers:
            root.add_key(signer.public_key, Root.type)
        root.roles[Root.type].threshold = threshold
        for role in (Targets.type, Snapshot.type, Timestamp.type):
            root.add_key(online.public_key, role)
        targets = Targets(expires=now + EXPIRY["targets"])
        targets.delegations = Delegations(keys={}, roles={})
        repo = cls(online, _signed_with(root, root_signers), _signed_with(targets, [online]))
        repo._store_root()
        repo._store(repo.targets)
        repo.refresh_snapshot(now)
        return repo

    @classmethod
    def load(cls, online: Signer, files: Mapping[str, bytes]) -> Repository:
        """A repository from its latest files (``root.json``, ``targets.json``, ...)."""
        root = Metadata[Root].from_bytes(files["root.json"])
        targets = Metadata[Targets].from_bytes(files["targets.json"])
        repo = cls(online, root, targets)
        repo.latest = {name[: -len(".json")]: data for name, data in files.items()}
        for name, data in files.items():
            if name.startswith("ns-"):
                repo.namespaces[name[: -len(".json")]] = Metadata[Targets].from_bytes(data)
        if "snapshot.json" in files:
            repo.snapshot = Metadata[Snapshot].from_bytes(files["snapshot.json"])
        if "timestamp.json" in files:
            repo.timestamp = Metadata[Timestamp].from_bytes(files["timestamp.json"])
        return repo

    # ------------------------------------------------------------------ storing

    def _store_root(self) -> None:
        self.files[f"{self.root.signed.version}.root.json"] = self.root.to_bytes(_SERIALIZER)

    def _store(self, md: Metadata[Any]) -> bytes:
        role = md.signed.type if md.signed.type != Targets.type or md is self.targets else None
        name = role or next(n for n, m in self.namespaces.items() if m is md)
        data = md.to_bytes(_SERIALIZER)
        self.files[f"{md.signed.version}.{name}.json"] = data
        self.latest[name] = data
        return data

    def _bump(self, md: Metadata[Any], expires: datetime) -> None:
        md.signed.version += 1
        md.signed.expires = expires
        md.signatures.clear()
        md.sign(self.online)

    # ------------------------------------------------------------------ changes

    def set_namespace(
        self,
        namespace: str,
        versions: Iterable[VersionTarget],
        keys: Iterable[PublisherKey],
        now: datetime,
        *,
        owners: Iterable[str] = (),
    ) -> bool:
        """Make ``namespace``'s role list ``versions`` and its delegation ``keys`` (and
        ``owners``); whether anything changed (then snapshot and timestamp must be refreshed)."""
        role = namespace_role(namespace)
        wanted = {t.path: t for t in (v.to_target() for v in versions)}
        changed = False
        current = self.namespaces.get(role)
        if current is None:
            current = _signed_with(Targets(expires=now + EXPIRY["namespace"]), [self.online])
            current.signed.targets = wanted
            self.namespaces[role] = current
            self._store(current)
            changed = True
        elif _as_dicts(current.signed.targets) != _as_dicts(wanted):
            current.signed.targets = wanted
            self._bump(current, now + EXPIRY["namespace"])
            self._store(current)
            changed = True
        if self._set_delegation(namespace, [k.to_dict() for k in keys], sorted(owners)):
            self._bump(self.targets, now + EXPIRY["targets"])
            self._store(self.targets)
            changed = True
        return changed

    def _set_delegation(
        self, namespace: str, keys: list[dict[str, Any]], owners: list[str]
    ) -> bool:
        delegations = self.targets.signed.delegations
        assert delegations is not None
        assert delegations.roles is not None
        role = namespace_role(namespace)
        existing = delegations.roles.get(role)
        fields: dict[str, Any] = {PUBLISHER_KEYS: keys}
        if owners:
            fields[OWNERS] = owners
        if existing is not None and existing.unrecognized_fields == fields:
            return False
        keyid = self.online.public_key.keyid
        delegations.keys[keyid] = self.online.public_key
        delegations.roles[role] = DelegatedRole(
            role, [keyid], 1, True, paths=[f"{namespace}/*/*/manifest.json"],
            unrecognized_fields=fields,
        )  # fmt: skip
        return True

    def refresh_snapshot(self, now: datetime) -> None:
        """A new snapshot (every targets role's version and digest) and a new timestamp."""
        meta = {"targets.json": self._meta("targets", self.targets)}
        for role, md in sorted(self.namespaces.items()):
            meta[f"{role}.json"] = self._meta(role, md)
        if self.snapshot is None:
            self.snapshot = _signed_with(
                Snapshot(expires=now + EXPIRY["snapshot"], meta=meta), [self.online]
            )
        else:
            self.snapshot.signed.meta = meta
            self._bump(self.snapshot, now + EXPIRY["snapshot"])
        data = self._store(self.snapshot)
        self.refresh_timestamp(now, _meta_of(data, self.snapshot.signed.version))

    def _meta(self, role: str, md: Metadata[Any]) -> MetaFile:
        return _meta_of(self.latest[role], md.signed.version)

    def refresh_timestamp(self, now: datetime, snapshot_meta: MetaFile | None = None) -> None:
        """A new timestamp (for the same snapshot unless ``snapshot_meta`` is given)."""
        if self.timestamp is None:
            assert snapshot_meta is not None
            self.timestamp = _signed_with(
                Timestamp(expires=now + EXPIRY["timestamp"], snapshot_meta=snapshot_meta),
                [self.online],
            )
        else:
            if snapshot_meta is not None:
                self.timestamp.signed.snapshot_meta = snapshot_meta
            self._bump(self.timestamp, now + EXPIRY["timestamp"])
        self.files["timestamp.json"] = self.timestamp.to_bytes(_SERIALIZER)

    def needs_refresh(self, now: datetime) -> bool:
        """Whether timestamp or snapshot has less than half its lifetime left."""
        pairs = ((self.timestamp, EXPIRY["timestamp"]), (self.snapshot, EXPIRY["snapshot"]))
        return any(md is None or md.signed.expires - now < life / 2 for md, life in pairs)

    def rotate_root(
        self,
        *,
        old_signers: list[Signer],
        new_signers: list[Signer],
        threshold: int,
        now: datetime,
        log_keys: Iterable[str] | None = None,
    ) -> bytes:
        """Root version + 1 with ``new_signers`` as root keys, signed by old and new keys
        (and naming ``log_keys`` instead, when given: how the log key is rotated)."""
        root = self.root.signed
        if log_keys is not None:
            root.unrecognized_fields[LOG_KEYS] = sorted(log_keys)
        for keyid in list(root.roles[Root.type].keyids):
            root.revoke_key(keyid, Root.type)
        for signer in new_signers:
            root.add_key(signer.public_key, Root.type)
        root.roles[Root.type].threshold = threshold
        root.version += 1
        root.expires = now + EXPIRY["root"]
        self.root.signatures.clear()
        for signer in [*old_signers, *new_signers]:
            self.root.sign(signer, append=True)
        self._store_root()
        return self.files[f"{root.version}.root.json"]


def _as_dicts(targets: Mapping[str, TargetFile]) -> dict[str, Any]:
    return {path: t.to_dict() for path, t in targets.items()}
