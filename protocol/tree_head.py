"""Signed tree heads of a transparency log (SPEC section 16.2), and their wire form.

A tree head says "the log had ``size`` entries, with this RFC 6962 root, at
``timestamp``" and is signed with Ed25519 by the log's key over the RFC 8785
canonical JSON of ``{"log_id", "root_hash", "size", "timestamp"}``; ``log_id``
is the key id of that key, so a head cannot be passed off as another log's.

Pure: the clock and the keys are the caller's. Not here: the tree
(:mod:`protocol.merkle`), keeping the last head a client saw (``runtime.transparency``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from typing import Any

from .canonical import canonical_bytes
from .errors import MIPError
from .signing import PublicKey, SigningKey

__all__ = ["SignedTreeHead", "TreeHeadError"]


class TreeHeadError(MIPError):
    """A tree head is malformed or its signature does not verify (``log.bad_tree_head``)."""

    code = "log.bad_tree_head"


def _hex32(value: Any, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise TreeHeadError(f"tree head {what} must be 64 hex digits", code="log.bad_tree_head")
    return raw


def _whole(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TreeHeadError(f"tree head {what} must be a whole number", code="log.bad_tree_head")
    return value


@dataclass(frozen=True)
class SignedTreeHead:
    size: int
    root_hash: bytes
    timestamp: int  # milliseconds since the epoch, UTC
    log_id: str
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        return canonical_bytes(
            {
                "log_id": self.log_id,
                "root_hash": self.root_hash.hex(),
                "size": self.size,
                "timestamp": self.timestamp,
            }
        )

    def signed_by(self, key: SigningKey) -> SignedTreeHead:
        """This head signed by the log's ``key`` (its ``log_id`` becomes the key's id)."""
        head = replace(self, log_id=key.keyid)
        return replace(head, signature=key.sign(head.signed_bytes()).value)

    def verify(self, key: PublicKey) -> SignedTreeHead:
        """Self, when signed by ``key`` (the pinned log key); else ``log.bad_tree_head``."""
        if self.log_id != key.keyid or not key.verify(self.signature, self.signed_bytes()):
            raise TreeHeadError(
                "the tree head is not signed by the pinned log key", code="log.bad_tree_head"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_id": self.log_id,
            "root_hash": self.root_hash.hex(),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "size": self.size,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SignedTreeHead:
        if not isinstance(data, dict):
            raise TreeHeadError("a tree head must be a JSON object", code="log.bad_tree_head")
        size, timestamp = _whole(data.get("size"), "size"), _whole(data.get("timestamp"), "time")
        log_id = data.get("log_id")
        if not isinstance(log_id, str) or len(log_id) != 64:
            raise TreeHeadError("tree head log_id must be 64 hex digits", code="log.bad_tree_head")
        try:
            signature = base64.b64decode(str(data.get("signature", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TreeHeadError(
                "tree head signature is not base64", code="log.bad_tree_head"
            ) from exc
        return cls(size, _hex32(data.get("root_hash"), "root_hash"), timestamp, log_id, signature)
