"""The one DRF exception handler: every error becomes ``{"error": {code, message, detail}}``.

Protocol errors (``protocol.MIPError``) keep their stable codes and answer 400;
registry errors (``memstore.errors.RegistryError``) carry their own status;
DRF's errors (validation, authentication, throttling, 404, 405) and Django's
refusals of a malformed request (too many form fields: 400, a body too large:
413) are mapped to ``registry.*`` codes; a database that is away (restarting,
unreachable) is a 503 ``registry.database_unavailable`` that says to retry.
Anything else is a 500 with code ``registry.internal`` and no internals in the message.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from protocol import LimitExceededError, MIPError

from ..errors import RegistryError

log = logging.getLogger(__name__)


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail or {}}}


def _codes(codes: Any) -> set[str]:
    if isinstance(codes, dict):
        return set().union(*(_codes(v) for v in codes.values())) if codes else set()
    if isinstance(codes, list):
        return set().union(*(_codes(v) for v in codes)) if codes else set()
    return {str(codes)}


def _drf(exc: exceptions.APIException) -> tuple[str, str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        if _codes(exc.get_codes()) == {"max_value"}:  # memstore/api/bounds.py
            return "registry.out_of_range", "a number is too large", {"fields": exc.detail}
        return "registry.invalid_request", "the request is invalid", {"fields": exc.detail}
    if isinstance(exc, exceptions.NotAuthenticated):
        return "registry.not_authenticated", str(exc.detail), {}
    if isinstance(exc, exceptions.AuthenticationFailed):
        return "registry.not_authenticated", str(exc.detail), {}
    if isinstance(exc, exceptions.Throttled):
        retry_after = getattr(exc, "wait", None)
        return "registry.throttled", "too many requests", {"retry_after": retry_after}
    if isinstance(exc, exceptions.PermissionDenied):
        return "registry.forbidden", str(exc.detail), {}
    if isinstance(exc, exceptions.NotFound):
        return "registry.not_found", str(exc.detail), {}
    if isinstance(exc, exceptions.MethodNotAllowed):
        return "registry.method_not_allowed", str(exc.detail), {}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return "registry.unsupported_media_type", str(exc.detail), {}
    if isinstance(exc, exceptions.ParseError):
        return "registry.invalid_request", str(exc.detail), {}
    return "registry.error", str(exc.detail), {}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, MIPError):
        http = (
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            if (isinstance(exc, LimitExceededError) and exc.code == "archive.limit.pack_size")
            else status.HTTP_400_BAD_REQUEST
        )
        return Response({"error": exc.to_dict()}, status=http)
    if isinstance(exc, RegistryError):
        if exc.status >= 500:
            log.warning("registry error: %s", exc)
        return Response({"error": exc.to_dict()}, status=exc.status)
    if isinstance(exc, RequestDataTooBig):  # Django's own answer would be 400; a size is 413
        return Response(
            error_body("registry.too_large", "the request body is too large"),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, SuspiciousOperation):  # e.g. TooManyFieldsSent: a malformed request
        return Response(
            error_body("registry.invalid_request", f"malformed request: {exc}"),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, (OperationalError, InterfaceError)):  # the transaction was rolled back
        log.warning("database unavailable: %s", exc)
        return Response(
            error_body("registry.database_unavailable", "the database is unavailable; retry"),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        code, message, detail = _drf(exc)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait))
        return Response(error_body(code, message, detail), status=exc.status_code, headers=headers)
    log.exception("unhandled error in API view", exc_info=exc)
    return Response(
        error_body("registry.internal", "internal error"),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def json_404(request: Any, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("registry.not_found", "no such page"), status=404)


def json_500(request: Any) -> JsonResponse:
    return JsonResponse(error_body("registry.internal", "internal error"), status=500)
