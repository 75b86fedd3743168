"""Who may publish, decided before a pack's bytes are decompressed.

A ``.memcube`` names its namespace only inside its manifest, and the full
reader (:func:`protocol.read_pack`) inflates and hashes up to the pack limit
(gigabytes) before the publisher could be checked. So :func:`pack_publish`
asks here first, in two steps that each read next to nothing:

1. :func:`require_publisher_somewhere` reads no byte of the file: an account
   that is maintainer of no namespace its token may publish to is refused
   (``registry.forbidden``) at once.
2. :func:`manifest_namespace` reads only the first tar member (the manifest,
   which both container versions put first), through a reader that stops
   after :data:`PEEK_SLACK_BYTES` more than the manifest limit, so a crafted
   header or a bomb behind the manifest is never inflated; the caller then
   checks the role and scope in that namespace (``require_publisher``).

When the peek cannot tell (not a tar, manifest not first, bad JSON) it says
``None`` and the full reader reports the precise ``archive.*``/``manifest.*``
error: it fails at the same first member, so it reads no more than the peek.

Not here: the full checks and the publish (:mod:`memstore.packs.publishing`).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from pathlib import Path
from typing import Any

from protocol import MANIFEST_MEMBER, Manifest, MIPError
from protocol.archive import GZIP_MAGIC

from ..accounts.actor import Actor
from ..accounts.models import ROLE_RANK, Role
from ..accounts.selectors import namespaces_of
from ..errors import ForbiddenError, NotAuthenticatedError

__all__ = ["PEEK_SLACK_BYTES", "manifest_namespace", "require_publisher_somewhere"]

#: Room for the tar headers (and a pax header) in front of the manifest's bytes.
PEEK_SLACK_BYTES = 64 * 1024


class _PeekLimitError(Exception):
    """The capped reader was asked for more than the peek may inflate."""


class _Capped(io.RawIOBase):
    """At most ``cap`` bytes of ``inner`` (decompressed, for a gzip'd pack), then an error."""

    def __init__(self, inner: Any, cap: int) -> None:
        self._inner = inner
        self._left = cap

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            raise _PeekLimitError
        data = self._inner.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def require_publisher_somewhere(actor: Actor) -> None:
    """Refuse an actor who could publish to no namespace at all (reads nothing)."""
    if actor.user is None:
        raise NotAuthenticatedError("publishing needs an account and a token")
    for membership in namespaces_of(user=actor.user):
        role = Role(membership.role)
        if ROLE_RANK[role] >= ROLE_RANK[Role.MAINTAINER] and actor.has_scope(
            f"publish:{membership.namespace.name}"
        ):
            return
    raise ForbiddenError(
        "you may not publish to any namespace: ask a namespace owner to make you a "
        "maintainer, and use a token with its publish:NAMESPACE scope"
    )


def manifest_namespace(pack_file: Path, *, max_manifest_bytes: int) -> str | None:
    """The namespace the pack's first member (its manifest) names; ``None`` if it cannot tell."""
    cap = max_manifest_bytes + PEEK_SLACK_BYTES
    try:
        with pack_file.open("rb") as raw:
            gzipped = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            inner: Any = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            stream = io.BufferedReader(_Capped(inner, cap))
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                member = tar.next()
                if member is None or member.name != MANIFEST_MEMBER or not member.isfile():
                    return None
                if member.size > max_manifest_bytes:
                    return None
                handle = tar.extractfile(member)
                data = handle.read(max_manifest_bytes + 1) if handle is not None else b""
        return Manifest.from_bytes(data).namespace
    except (_PeekLimitError, tarfile.TarError, OSError, EOFError, zlib.error, MIPError):
        return None
    except (ValueError, KeyError, TypeError):
        return None
