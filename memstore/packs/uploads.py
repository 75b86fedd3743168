"""Resumable upload sessions (services): create, append a chunk, complete, cancel.

In the spirit of PEP 694: the client announces the size and sha256, sends
chunks at explicit offsets (a chunk at the wrong offset is refused with the
current offset, so a client can always resume), then asks to complete, which
checks size and digest and runs the same ``pack_publish`` as a one-request
upload. Chunks go to a file under ``MEMSTORE_UPLOAD_DIR`` (a volume shared by
the web processes in production), written by :mod:`memstore.storage.parts` like the
per-blob uploads of :mod:`memstore.packs.blob_uploads`. A user holds at most
``MEMSTORE_MAX_OPEN_UPLOADS`` open sessions; expired ones and their part files are
purged hourly (:mod:`memstore.packs.upload_limits`).
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from protocol import IntegrityError as PackIntegrityError

from ..accounts.actor import Actor
from ..errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotAuthenticatedError,
    NotFoundError,
    TooLargeError,
)
from ..storage.backends import BlobStorage
from ..storage.parts import (
    ChunkCodes,
    check_chunk,
    check_chunk_size,
    part_append,
    part_path,
    part_sha256,
)
from .models import PackVersion, UploadSession
from .publish_gate import require_publisher_somewhere
from .publishing import FREE, Price, pack_publish
from .upload_limits import require_upload_room

SESSION_TTL = timedelta(hours=24)
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


def _part_path(session_id: uuid.UUID) -> Path:
    return part_path(f"{session_id}.part")


def upload_session_create(*, actor: Actor, size: int, sha256: str) -> UploadSession:
    if actor.user is None:
        raise NotAuthenticatedError("uploading needs an account and a token")
    if actor.scopes is not None and not any(s.startswith("publish:") for s in actor.scopes):
        raise ForbiddenError("this token has no publish scope")
    limit: int = settings.MEMSTORE_MAX_PACK_BYTES
    if size <= 0:
        raise InvalidRequestError("size must be positive", code="registry.invalid_request")
    if size > limit:
        raise TooLargeError(f"the pack is {size} bytes; the limit is {limit}", limit=limit)
    if not _HEX64.match(sha256):
        raise InvalidRequestError("sha256 must be 64 lower-case hex digits")
    require_publisher_somewhere(actor)  # a stranger's bytes are refused before they arrive
    require_upload_room(user=actor.user, kind="pack")
    session = UploadSession.objects.create(
        user=actor.user, size=size, sha256=sha256, expires_at=timezone.now() + SESSION_TTL
    )
    _part_path(session.id).touch()
    return session


def upload_session_get(*, actor: Actor, session_id: uuid.UUID) -> UploadSession:
    session = (
        UploadSession.objects.filter(id=session_id, user=actor.user).first() if actor.user else None
    )
    if session is None:
        raise NotFoundError("no such upload session", code="registry.upload_not_found")
    return session


_CHUNK_CODES = ChunkCodes(
    too_large="registry.too_large",
    offset_mismatch="registry.upload_offset_mismatch",
    too_long="registry.upload_too_long",
)


def _require_open(session: UploadSession) -> None:
    if session.status != UploadSession.Status.OPEN:
        raise ConflictError(
            f"the upload session is {session.status}", code="registry.upload_closed"
        )
    if session.expires_at <= timezone.now():
        raise ConflictError("the upload session expired", code="registry.upload_closed")


def upload_session_append(
    *, actor: Actor, session_id: uuid.UUID, offset: int, data: bytes
) -> UploadSession:
    """Append ``data`` at ``offset`` (which must be the session's current offset)."""
    check_chunk_size(len(data), _CHUNK_CODES)
    with transaction.atomic():
        session = upload_session_get(actor=actor, session_id=session_id)
        session = UploadSession.objects.select_for_update().get(pk=session.pk)
        _require_open(session)
        check_chunk(offset=offset, current=session.offset, size=session.size,
                    length=len(data), codes=_CHUNK_CODES)  # fmt: skip
        part_append(_part_path(session.id), session.offset, data)
        session.offset += len(data)
        session.save(update_fields=["offset"])
    return session


def upload_session_complete(
    *,
    actor: Actor,
    session_id: uuid.UUID,
    private: bool = False,
    price: Price = FREE,
    storage: BlobStorage | None = None,
) -> PackVersion:
    session = upload_session_get(actor=actor, session_id=session_id)
    _require_open(session)
    if session.offset != session.size:
        raise InvalidRequestError(
            f"{session.offset} of {session.size} bytes uploaded",
            code="registry.upload_incomplete",
            offset=session.offset,
        )
    path = _part_path(session.id)
    actual = part_sha256(path, path.stat().st_size)
    if actual != session.sha256:
        raise PackIntegrityError(
            "the uploaded bytes do not have the announced sha256",
            code="integrity.digest_mismatch",
            expected=session.sha256,
            actual=actual,
        )
    version = pack_publish(
        actor=actor, pack_file=path, private=private, price=price, storage=storage
    )
    UploadSession.objects.filter(pk=session.pk).update(
        status=UploadSession.Status.COMPLETED, version=version
    )
    path.unlink(missing_ok=True)
    return version


def upload_session_cancel(*, actor: Actor, session_id: uuid.UUID) -> None:
    session = upload_session_get(actor=actor, session_id=session_id)
    UploadSession.objects.filter(pk=session.pk, status=UploadSession.Status.OPEN).update(
        status=UploadSession.Status.CANCELLED
    )
    _part_path(session.id).unlink(missing_ok=True)
