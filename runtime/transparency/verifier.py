"""Verifying a registry's log: pinned key, consistent tree heads, inclusion, full replay.

State per registry, ``$MEMOS_HOME/transparency/<sha256 of the URL>.json``::

    {"registry": URL, "log_key": "ed25519:...", "head": {...signed tree head...},
     "acknowledged": [leaf indexes of key events the user has seen]}

The log's key comes from the registry's TUF root (``x-memstore-log-keys``,
signed by the offline root keys, chained to the pinned root): a head signed by
a key the root does not name is refused (``log.key_not_in_root``), and a root
rotation is how the log key changes. Only for a registry whose root names no
log key (or that serves no TUF index) is the key pinned on first contact, as
before, and every later head must be signed by it (``log.key_changed``).
Every head must be consistent with the kept one: the same size with another root, or a failed
consistency proof, is a split view or a rewritten history
(``log.inconsistent``); a smaller head is checked for consistency and the
kept (larger) one stays. Not here: HTTP (:mod:`.source`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol import MIPError, PublicKey
from protocol import merkle as m
from protocol.tree_head import SignedTreeHead

from ..errors import MemosError
from .source import LogSource

__all__ = ["KEY_EVENTS", "LogEntryView", "LogError", "LogVerifier"]

KEY_EVENTS = frozenset({"key.register", "key.revoke", "namespace.transfer"})
PAGE = 1000


class LogError(MemosError):
    """The registry's transparency log refused: ``log.*``."""

    code = "log.error"


@dataclass(frozen=True)
class LogEntryView:
    """One verified entry: its index, its exact bytes, and their JSON."""

    index: int
    body: bytes
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def namespace(self) -> str:
        return str(self.data.get("namespace", ""))


def _entry(raw: Any) -> LogEntryView:
    try:
        body = base64.b64decode(str(raw["body"]), validate=True)
        data = json.loads(body)
        index = raw["index"]
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise LogError(f"a log entry is malformed: {exc}", code="log.bad_entry") from exc
    if not isinstance(data, dict) or not isinstance(index, int) or data.get("index") != index:
        raise LogError("a log entry is malformed", code="log.bad_entry")
    return LogEntryView(index, body, data)


def _path(raw: Any) -> list[bytes]:
    try:
        return [bytes.fromhex(p) for p in raw["path"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise LogError(f"a log proof is malformed: {exc}", code="log.bad_entry") from exc


def _root_of(leaves: Sequence[bytes]) -> bytes:
    """The RFC 6962 root of ``leaves``, built the way the registry stores its tree."""
    nodes: dict[tuple[int, int], bytes] = {}
    for i, leaf in enumerate(leaves):
        nodes[(0, i)] = leaf
        for level, index in m.perfect_nodes_completed_by(i):
            nodes[(level, index)] = m.node_hash(
                nodes[(level - 1, 2 * index)], nodes[(level - 1, 2 * index + 1)]
            )
    return m.subtree_root(0, len(leaves), lambda level, index: nodes[(level, index)])


class LogVerifier:
    """One registry's log as this ``MEMOS_HOME`` has seen it."""

    def __init__(
        self, home: Path, registry: str, source: LogSource, *,
        root_keys: Sequence[PublicKey] | None = None,
    ) -> None:  # fmt: skip
        """``root_keys``: the log keys the registry's verified TUF root names
        (:meth:`runtime.trust_index.TrustIndex.log_keys`); None: pinned on first use."""
        self.registry = registry.rstrip("/")
        self.source = source
        self.root_keys = None if root_keys is None else tuple(root_keys)
        digest = hashlib.sha256(self.registry.encode("utf-8")).hexdigest()[:32]
        self.path = home / "transparency" / f"{digest}.json"

    # ---------------------------------------------------------------- state

    def _state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {"registry": self.registry, "acknowledged": []}
        except ValueError as exc:
            raise LogError(f"{self.path} is not JSON", code="log.bad_state") from exc
        return data if isinstance(data, dict) else {"registry": self.registry, "acknowledged": []}

    def _save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tlog-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def kept_head(self) -> SignedTreeHead | None:
        head = self._state().get("head")
        return SignedTreeHead.from_dict(head) if head else None

    # ---------------------------------------------------------------- heads

    def refresh(self) -> SignedTreeHead:
        """The registry's current head, verified against the pinned key and the kept head."""
        state = self._state()
        raw = self.source.tree_head()
        try:
            head = SignedTreeHead.from_dict(raw)
            served = PublicKey.from_text(str(raw.get("public_key", "")))
        except MIPError as exc:
            raise LogError(exc.message, code="log.bad_tree_head") from exc
        if self.root_keys is not None:
            named = {k.keyid: k for k in self.root_keys}
            if served.keyid not in named or head.log_id not in named:
                raise LogError(
                    f"{self.registry} signs its log with a key its pinned TUF root does not "
                    "name: refused",
                    code="log.key_not_in_root", served=served.keyid, named=sorted(named),
                )  # fmt: skip
            pinned = named[served.keyid]
        else:
            pinned = PublicKey.from_text(state["log_key"]) if "log_key" in state else served
        if served.keyid != pinned.keyid:
            raise LogError(
                f"{self.registry} signs its log with another key than the one pinned",
                code="log.key_changed", pinned=pinned.keyid, served=served.keyid,
            )  # fmt: skip
        try:
            head.verify(pinned)
        except MIPError as exc:
            raise LogError(exc.message, code="log.bad_tree_head") from exc
        kept = SignedTreeHead.from_dict(state["head"]) if state.get("head") else None
        if kept is not None:
            self._check_consistent(kept, head)
            if head.size < kept.size:
                return kept
        state.update(log_key=pinned.to_text(), head=head.to_dict())
        self._save(state)
        return head

    def _check_consistent(self, kept: SignedTreeHead, head: SignedTreeHead) -> None:
        small, big = (kept, head) if kept.size <= head.size else (head, kept)
        try:
            if small.size == big.size:
                m.verify_consistency(small.size, big.size, small.root_hash, big.root_hash, [])
                return
            proof = _path(self.source.consistency(small.size, big.size))
            m.verify_consistency(small.size, big.size, small.root_hash, big.root_hash, proof)
        except m.MerkleProofError as exc:
            raise LogError(
                f"{self.registry}'s log is not consistent with the tree head seen before "
                f"(size {kept.size}): a split view or a rewritten history ({exc.message})",
                code="log.inconsistent", kept=kept.size, served=head.size,
            ) from exc  # fmt: skip

    # ---------------------------------------------------------------- inclusion

    def check_published(self, *, name: str, version: str, manifest_sha256: str) -> LogEntryView:
        """The publish entry of ``name@version`` with this manifest, included in the head."""
        head = self.refresh()
        if head.size == 0:
            raise LogError(f"{name}@{version} is not in the log", code="log.not_included")
        raw = self.source.inclusion(size=head.size, manifest_sha256=manifest_sha256)
        entry = _entry(raw.get("entry") if isinstance(raw, dict) else None)
        data = entry.data
        said = (
            data.get("kind"),
            data.get("pack"),
            data.get("version"),
            data.get("manifest_sha256"),
        )
        if said != ("publish", name, version, manifest_sha256):
            raise LogError(
                f"the log's entry is not the publication of {name}@{version}",
                code="log.not_included", entry=entry.index,
            )  # fmt: skip
        try:
            m.verify_inclusion(
                m.leaf_hash(entry.body), entry.index, head.size, _path(raw), head.root_hash
            )
        except m.MerkleProofError as exc:
            raise LogError(
                f"{name}@{version}'s publication is not included in the signed tree head",
                code="log.not_included", entry=entry.index,
            ) from exc  # fmt: skip
        return entry

    # ---------------------------------------------------------------- replay

    def replay(self) -> tuple[SignedTreeHead, list[LogEntryView]]:
        """Every entry of the current head, checked to make exactly its root."""
        head = self.refresh()
        entries: list[LogEntryView] = []
        for start in range(0, head.size, PAGE):
            end = min(head.size, start + PAGE)
            raw = self.source.entries(start, end)
            page = [_entry(e) for e in (raw or {}).get("entries", [])]
            if [e.index for e in page] != list(range(start, end)):
                raise LogError(
                    f"the log served entries other than {start}..{end - 1}",
                    code="log.inconsistent",
                )
            entries += page
        if _root_of([m.leaf_hash(e.body) for e in entries]) != head.root_hash:
            raise LogError(
                "the log's entries do not make the root of its signed tree head",
                code="log.inconsistent",
            )
        return head, entries

    def unexpected_key_events(
        self, entries: Iterable[LogEntryView], namespaces: Iterable[str]
    ) -> list[LogEntryView]:
        """Key events of ``namespaces`` the user has not acknowledged."""
        wanted, seen = set(namespaces), set(self._state().get("acknowledged", []))
        return [
            e for e in entries
            if e.kind in KEY_EVENTS and e.namespace in wanted and e.index not in seen
        ]  # fmt: skip

    def acknowledge(self, indexes: Iterable[int]) -> None:
        state = self._state()
        state["acknowledged"] = sorted(set(state.get("acknowledged", [])) | set(indexes))
        self._save(state)
