"""The resolve answer as JSON bytes: a version's unchanging parts rendered once per process.

Why: on 2 cores at 300 resolves/s, DRF's output serializer (``ResolveOut``) and re-encoding
the manifest on every request were a third of a resolve's time, and reading the payloads and
signatures two more queries. A published version's manifest, payload list and signatures are
written once (:mod:`.publishing`) and never edited, so they are rendered once per process,
keyed by the version's id, manifest digest and publication time, in a small bounded table.

Everything that can change between two requests is read and rendered fresh on every one:
yanked (and why), deprecated, private, the price, the namespace's keys (a revocation shows on
the next resolve), the ingest status, and the signed download URLs with their expiry. A
deleted version never gets here (the selector refuses it first).

The shape is ``ResolveOut``'s (:mod:`.serializers`; the OpenAPI schema still describes it
from there) and the encoding DRF's ``JSONRenderer``; a test checks that the two agree.
Not here: who may resolve (:mod:`.selectors`), download counts (:mod:`.downloads`).
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from ..accounts.presenters import key_dict
from ..accounts.selectors import namespace_keys
from ..api.common import absolute
from ..storage.backends import BlobStorage
from .models import PackVersion
from .presenters import ingest_dict, price_dict
from .selectors import Resolution

__all__ = ["resolve_json"]

#: Versions whose unchanging parts one process keeps rendered (a few MB at most).
CACHE_SIZE = 512

_RENDERER = JSONRenderer()
_DATETIME = serializers.DateTimeField()  # ResolveOut's datetime format, time zone included


@dataclass(frozen=True)
class _Fixed:
    """What a version's resolve answer always says: JSON members, and the payload list."""

    members: bytes  # '"manifest":{...},"manifest_b64":...,"signatures":[...]' (no braces)
    payloads: tuple[tuple[str, str, int, str], ...]  # (path, media_type, size, sha256), by path


_fixed: dict[tuple[int, str, datetime], _Fixed] = {}
_fixed_lock = threading.Lock()


def _render(value: Any) -> bytes:
    rendered: bytes = _RENDERER.render(value)
    return rendered


def _fixed_part(version: PackVersion) -> _Fixed:
    # The id alone would do, but a database rebuilt under a running process may give an id
    # again: the digest and the publication time make that a miss, never a wrong answer.
    key = (version.pk, version.manifest_sha256, version.published_at)
    found = _fixed.get(key)
    if found is not None:
        return found
    if {"manifest", "manifest_bytes"} & version.get_deferred_fields():
        version.refresh_from_db(fields=["manifest", "manifest_bytes"])
    members = _render(
        {
            "manifest": version.manifest,
            "manifest_b64": base64.b64encode(bytes(version.manifest_bytes)).decode("ascii"),
            "manifest_sha256": version.manifest_sha256,
            "signatures": [
                {"alg": s.algorithm, "keyid": s.keyid, "sig": s.value_b64}
                for s in version.signatures.all()
            ],
        }
    )[1:-1]
    payloads = tuple((p.path, p.media_type, p.size, p.sha256) for p in version.payloads.all())
    found = _Fixed(members=members, payloads=payloads)
    with _fixed_lock:
        if len(_fixed) >= CACHE_SIZE:
            _fixed.clear()  # rare, and the next requests render again: no need for an LRU
        _fixed[key] = found
    return found


def _datetime(value: Any) -> Any:
    return _DATETIME.to_representation(value) if value is not None else None


def resolve_json(resolution: Resolution, request: Request, storage: BlobStorage) -> bytes:
    """The body of ``GET /api/v1/resolve/...`` for ``resolution`` (see the module docstring)."""
    version, pack = resolution.version, resolution.pack
    fixed = _fixed_part(version)
    ttl: int = settings.MEMSTORE_URL_TTL
    urls: dict[str, str] = {}

    def url(sha256: str) -> str:
        if sha256 not in urls:
            urls[sha256] = absolute(request, storage.download_url(sha256, ttl=ttl))
        return urls[sha256]

    pack_file = None
    if version.file_sha256:
        filename = f"{pack.namespace.name}-{pack.name}-{version.version}.memcube"
        pack_file = {
            "sha256": version.file_sha256,
            "size": version.file_size,
            "url": absolute(
                request, storage.download_url(version.file_sha256, ttl=ttl, filename=filename)
            ),
            "url_expires_at": _datetime(timezone.now() + timedelta(seconds=ttl)),
        }
    keys = []
    found_keys = resolution.keys
    if found_keys is None:
        found_keys = namespace_keys(namespace=pack.namespace)
    for key in found_keys:
        shown = key_dict(key)
        shown["created_at"] = _datetime(shown["created_at"])
        shown["revoked_at"] = _datetime(shown["revoked_at"])
        keys.append(shown)
    first: dict[str, tuple[str, str, int, str]] = {}
    for p in fixed.payloads:
        first.setdefault(p[3], p)
    ingest = ingest_dict(version)
    changing = {
        "name": pack.full_name,
        "version": version.version,
        "spec": resolution.spec,
        "published_at": _datetime(version.published_at),
        "yanked": version.yanked,
        "yanked_reason": version.yanked_reason,
        "deprecated": pack.deprecated,
        "deprecation_message": pack.deprecation_message,
        "private": pack.private,
        "price": price_dict(version),
        "keys": keys,
        "pack": pack_file,
        "payloads": [
            {"path": path, "media_type": media, "size": size, "sha256": sha, "url": url(sha)}
            for path, media, size, sha in fixed.payloads
        ],
        "blobs": [
            {"sha256": sha, "size": p[2], "media_type": p[1], "url": url(sha)}
            for sha, p in sorted(first.items())
        ],
        "ingest": {"status": ingest["status"], "memories": ingest["memories"]},
    }
    return _render(changing)[:-1] + b"," + fixed.members + b"}"
