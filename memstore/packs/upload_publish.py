"""Publish a pack that arrived as an uploaded file: the API's one-request upload and the
web dashboard's form both call :func:`pack_publish_upload`.

Django hands a view an ``UploadedFile``: a small one in memory, a large one already
spooled to a temporary file. A file on disk is published in place; one in memory is
written to a private temporary folder first (removed afterwards). Then
:func:`memstore.packs.services.pack_publish` does every check (size limit, account,
role, token scope, signatures) and the publish itself, so callers repeat none of them.

:func:`pack_upload_admit` is for a view that can refuse a request before reading its
body: it needs an account, and the announced size must fit the pack limit (plus the
multipart framing).

Not here: resumable upload sessions (:mod:`memstore.packs.uploads`), form or
serializer parsing (the callers), the publish rules (:mod:`memstore.packs.services`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile

from ..accounts.actor import Actor
from ..errors import NotAuthenticatedError, TooLargeError
from .models import PackVersion
from .services import FREE, Price, pack_publish

__all__ = ["MULTIPART_OVERHEAD_BYTES", "pack_publish_upload", "pack_upload_admit"]

#: Room for the multipart framing and form fields around the pack in one request.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def pack_upload_admit(*, actor: Actor, announced_bytes: int) -> None:
    """Refuse a one-request upload before its body is read: no account, or too large."""
    if actor.user is None:
        raise NotAuthenticatedError("publishing needs an account and a token")
    limit: int = settings.MEMSTORE_MAX_PACK_BYTES
    if announced_bytes > limit + MULTIPART_OVERHEAD_BYTES:
        raise TooLargeError(
            f"the request is {announced_bytes} bytes; the pack limit is {limit}", limit=limit
        )


def pack_publish_upload(
    *, actor: Actor, upload: UploadedFile[bytes], private: bool = False, price: Price = FREE
) -> PackVersion:
    """Publish the ``.memcube`` in ``upload`` for ``actor`` (see the module docstring)."""
    if isinstance(upload, TemporaryUploadedFile):  # already on disk: publish it in place
        return pack_publish(
            actor=actor,
            pack_file=Path(upload.temporary_file_path()),
            private=private,
            price=price,
        )
    with tempfile.TemporaryDirectory(prefix="memstore-upload-") as tmp:
        path = Path(tmp) / "upload.memcube"
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        return pack_publish(actor=actor, pack_file=path, private=private, price=price)
