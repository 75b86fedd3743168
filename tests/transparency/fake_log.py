"""A lying registry log for unit tests: an honest in-memory log that can fork or rewrite itself."""

from __future__ import annotations

import base64
from typing import Any

from protocol import SigningKey, canonical_bytes
from protocol import merkle as m
from protocol.tree_head import SignedTreeHead


class FakeLog:
    """Speaks :class:`runtime.transparency.LogSource` over a list of entries it holds."""

    def __init__(self, key: SigningKey, bodies: list[bytes] | None = None) -> None:
        self.key = key
        self.bodies: list[bytes] = list(bodies or [])
        #: Serve the head of this size instead of the whole log (a stale head).
        self.shown_size: int | None = None
        self.nodes: dict[tuple[int, int], bytes] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        self.nodes = {}
        for i, body in enumerate(self.bodies):
            self.nodes[(0, i)] = m.leaf_hash(body)
            for level, index in m.perfect_nodes_completed_by(i):
                self.nodes[(level, index)] = m.node_hash(
                    self.nodes[(level - 1, 2 * index)], self.nodes[(level - 1, 2 * index + 1)]
                )

    def _get(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def append(self, kind: str, namespace: str, **fields: Any) -> int:
        index = len(self.bodies)
        body = canonical_bytes({**fields, "index": index, "kind": kind, "namespace": namespace})
        self.bodies.append(body)
        self._rebuild()
        return index

    def fork(self, keep: int) -> FakeLog:
        """Another log sharing the first ``keep`` entries (what a split view shows a victim)."""
        return FakeLog(self.key, self.bodies[:keep])

    def root(self, size: int) -> bytes:
        return m.subtree_root(0, size, self._get)

    # LogSource
    def tree_head(self) -> Any:
        size = len(self.bodies) if self.shown_size is None else self.shown_size
        head = SignedTreeHead(size, self.root(size), 1, "").signed_by(self.key)
        return {**head.to_dict(), "public_key": self.key.public_key.to_text()}

    def _entry(self, i: int) -> dict[str, Any]:
        return {"index": i, "body": base64.b64encode(self.bodies[i]).decode()}

    def entries(self, start: int, end: int) -> Any:
        return {"entries": [self._entry(i) for i in range(start, min(end, len(self.bodies)))]}

    def inclusion(self, *, size: int, manifest_sha256: str) -> Any:
        for i, body in enumerate(self.bodies[:size]):
            if manifest_sha256.encode() in body and b'"publish"' in body:
                path = m.inclusion_path(i, size, self._get)
                return {"entry": self._entry(i), "size": size, "path": [p.hex() for p in path]}
        raise LookupError("no such entry")

    def consistency(self, first: int, second: int) -> Any:
        second = min(second, len(self.bodies))
        first = min(first, second)
        return {"path": [p.hex() for p in m.consistency_path(first, second, self._get)]}
