"""Helpers shared by the API views: the actor of a request, raw-bytes parsing, URLs."""

from __future__ import annotations

from typing import Any

from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from ..accounts.actor import ANONYMOUS, Actor
from ..accounts.models import ApiToken


def actor_of(request: Request) -> Actor:
    user = request.user
    if user is None or not user.is_authenticated:
        return ANONYMOUS
    auth = request.auth
    if isinstance(auth, ApiToken):
        return Actor(user=user, scopes=frozenset(auth.scopes))
    return Actor(user=user, scopes=None)


class RawBytesParser(BaseParser):
    """``application/octet-stream`` bodies as bytes (upload-session chunks)."""

    media_type = "application/octet-stream"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        data: bytes = stream.read() if stream is not None else b""
        return data


def absolute(request: Request, url: str) -> str:
    """Make a storage URL absolute (local storage gives server-relative URLs)."""
    if url.startswith(("http://", "https://")):
        return url
    return request.build_absolute_uri(url)
