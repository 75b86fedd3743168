"""A registry that serves a TUF index -- and can lie in every way the TUF spec lists.

:class:`TufRegistry` is the runtime tests' :class:`FakeRegistry` (resolve and
blobs, our API's shape) plus ``/api/v1/tuf/<file>`` built with the
registry's own :class:`memstore.tuf.repository.Repository` (pure python-tuf,
no Django), so the honest metadata is the real registry's. Lies are
overrides: ``served`` replaces a file's bytes, ``stream`` serves one as an
endless or trickling body, ``frozen`` keeps serving an old timestamp;
``repo`` can be driven directly with the (stolen) online key.
python-tuf's own RepositorySimulator plays this part for its tests.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from securesystemslib.signer import CryptoSigner

from memstore.tuf.repository import PublisherKey, Repository, VersionTarget
from protocol import PublicKey, Signature, SigningKey
from protocol.endorsement import endorse_key
from runtime.tests.fake_registry import FakeRegistry, Published

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


@dataclass
class TufRegistry:
    fake: FakeRegistry = field(default_factory=lambda: FakeRegistry(blob_urls=True))
    root_signer: CryptoSigner = field(default_factory=CryptoSigner.generate_ed25519)
    online: CryptoSigner = field(default_factory=CryptoSigner.generate_ed25519)
    now: datetime = NOW
    #: filename -> bytes served instead of the honest file
    served: dict[str, bytes] = field(default_factory=dict)
    #: filename -> a body streamed instead (endless, trickling)
    stream: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, list[PublisherKey]] = field(default_factory=dict)
    versions: dict[str, list[VersionTarget]] = field(default_factory=dict)
    owners: dict[str, list[str]] = field(default_factory=dict)
    tuf_requests: list[str] = field(default_factory=list)
    #: the log key root names (``x-memstore-log-keys``), and the log served, if any
    log_key: SigningKey | None = None
    log: Any = None  # tests.transparency.fake_log.FakeLog: /api/v1/log/...
    repo: Repository = field(init=False)

    def __post_init__(self) -> None:
        named = [self.log_key.public_key.to_text()] if self.log_key else []
        self.repo = Repository.create(
            root_signers=[self.root_signer], threshold=1, online=self.online, now=self.now,
            log_keys=named,
        )  # fmt: skip

    # ------------------------------------------------------------------ honest changes

    def add_key(
        self, namespace: str, key: PublicKey, *, endorsed_by: SigningKey | None = None,
        revoked_at: datetime | None = None, compromised_since: datetime | None = None,
    ) -> None:  # fmt: skip
        endorsement = None
        if endorsed_by is not None:
            sig: Signature = endorse_key(namespace, key, endorsed_by)
            endorsement = {"keyid": sig.keyid, "sig": sig.to_dict()["sig"]}
        self.keys.setdefault(namespace, []).append(PublisherKey(
            key.to_text(), key.keyid, _iso(self.now),
            _iso(revoked_at) if revoked_at else None,
            _iso(compromised_since) if compromised_since else None, endorsement,
        ))  # fmt: skip
        self.fake.add_key(namespace, key)
        self.sync(namespace)

    def set_key(self, namespace: str, keyid: str, **changes: Any) -> None:
        """Change a listed key (revocation, compromise) and re-sign."""
        from dataclasses import replace

        self.keys[namespace] = [
            replace(k, **changes) if k.keyid == keyid else k for k in self.keys[namespace]
        ]
        self.sync(namespace)

    def transfer(self, namespace: str, to_owner: str) -> None:
        """The namespace changes hands (the delegation names the new owner) and re-signs."""
        self.owners[namespace] = [to_owner]
        self.sync(namespace)

    def publish(self, path: Path, *, published_at: datetime | None = None) -> Published:
        pub = self.fake.publish(path)
        namespace = pub.name.split("/", 1)[0]
        self.versions.setdefault(namespace, []).append(VersionTarget(
            pub.name, pub.version, hashlib.sha256(pub.manifest_bytes).hexdigest(),
            len(pub.manifest_bytes), _iso(published_at or self.now),
            pack_sha256=pub.sha256, pack_size=pub.size,
        ))  # fmt: skip
        self.sync(namespace)
        return pub

    def yank(self, name: str, version: str) -> None:
        from dataclasses import replace

        namespace = name.split("/", 1)[0]
        self.versions[namespace] = [
            replace(v, yanked=True) if (v.name, v.version) == (name, version) else v
            for v in self.versions[namespace]
        ]
        for pub in self.fake.packs.get(name, []):
            pub.yanked = pub.yanked or pub.version == version
        self.sync(namespace)

    def sync(self, namespace: str) -> None:
        self.repo.set_namespace(
            namespace, self.versions.get(namespace, []), self.keys.get(namespace, []), self.now,
            owners=self.owners.get(namespace, []),
        )  # fmt: skip
        self.repo.refresh_snapshot(self.now)

    @property
    def root_bytes(self) -> bytes:
        return self.repo.files["1.root.json"]

    # ------------------------------------------------------------------ serving

    def tuf_file(self, name: str) -> bytes | None:
        if name in self.served:
            return self.served[name]
        return self.repo.files.get(name)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        m = re.match(r"^/api/v1/tuf/([^/?]+)$", path)
        if m:
            name = m.group(1)
            self.tuf_requests.append(name)
            if name in self.stream:
                return httpx.Response(200, stream=_Stream(self.stream[name]()))
            data = self.tuf_file(name)
            if data is None:
                return httpx.Response(
                    404, json={"error": {"code": "tuf.not_found", "message": name, "detail": {}}}
                )
            return httpx.Response(200, content=data)
        if self.log is not None and path.startswith("/api/v1/log/"):
            return self._log(request.url.path.removeprefix("/api/v1/log/"), request.url.params)
        status, headers, body = self.fake.respond(path, dict(request.headers))
        return httpx.Response(status, headers=headers, content=bytes(body))

    def _log(self, what: str, params: httpx.QueryParams) -> httpx.Response:
        if what == "tree-head":
            return httpx.Response(200, json=self.log.tree_head())
        if what == "entries":
            return httpx.Response(200, json=self.log.entries(int(params["start"]),
                                                             int(params["end"])))  # fmt: skip
        if what == "proof/inclusion":
            return httpx.Response(200, json=self.log.inclusion(
                size=int(params["size"]), manifest_sha256=params["manifest_sha256"]))  # fmt: skip
        return httpx.Response(200, json=self.log.consistency(int(params["first"]),
                                                             int(params["second"])))  # fmt: skip

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def endless() -> Iterator[bytes]:
    while True:
        yield b" " * 65536


def trickle() -> Iterator[bytes]:
    while True:
        time.sleep(0.05)
        yield b" "
