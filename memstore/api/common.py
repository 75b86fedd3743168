"""What every domain's API views share: input and output helpers, the error responses
of the schema, the publish throttle, raw-bytes parsing, absolute URLs.

The views themselves live with their domain (``memstore/<domain>/apis.py``); the URL
table that routes to them is :mod:`memstore.urls`. This package imports no domain, so
every domain may import it. Not here: any domain's logic, the actor of a request
(:func:`memstore.accounts.authentication.actor_of`).
"""

from __future__ import annotations

from typing import Any

from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from .serializers import ErrorOut

__all__ = [
    "ERRORS",
    "MetadataThrottle",
    "PublishThrottle",
    "RawBytesParser",
    "absolute",
    "content_length",
    "respond",
    "valid_input",
]

#: The error responses most operations document (``{"error": {code, message, detail}}``).
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


def valid_input(serializer_class: type[Any], data: Any) -> dict[str, Any]:
    """``data`` validated by an input serializer (``registry.invalid_request`` otherwise)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    validated: dict[str, Any] = serializer.validated_data
    return validated


def respond(serializer_class: type[Any], data: Any, code: int = 200) -> Response:
    """A response whose body is ``data`` shaped by an output serializer."""
    return Response(serializer_class(data).data, status=code)


def content_length(request: Request) -> int:
    """The announced body size (0 when absent or malformed), read before the body is."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class PublishThrottle(ScopedRateThrottle):
    """The ``publish`` rate (``MEMSTORE_THROTTLE_PUBLISH``) for views with that scope."""

    scope_attr = "throttle_scope"


class MetadataThrottle(ScopedRateThrottle):
    """The ``metadata`` rate (``MEMSTORE_THROTTLE_METADATA``) instead of the anon/user ones.

    For the signed public reads every install makes (TUF metadata, the log's tree heads
    and proofs): about ten a pack, so the anonymous API rate would stop one CI job
    installing a dozen packs from one address. They are cheap, and their signatures make
    them safe to serve from any cache, so they get a rate of their own.
    """

    scope_attr = "throttle_scope"


class RawBytesParser(BaseParser):
    """``application/octet-stream`` bodies as bytes (upload-session chunks)."""

    media_type = "application/octet-stream"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data: bytes = stream.read() if stream is not None else b""
        return data


def absolute(request: Request, url: str) -> str:
    """Make a storage URL absolute (local storage gives server-relative URLs)."""
    if url.startswith(("http://", "https://")):
        return url
    return request.build_absolute_uri(url)
