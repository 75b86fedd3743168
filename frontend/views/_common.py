"""Helpers shared by the views: the actor of a request and error messages."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpRequest
from rest_framework.throttling import BaseThrottle

from memstore.accounts.actor import ANONYMOUS, Actor
from memstore.accounts.models import User
from memstore.errors import NotFoundError
from memstore.packs.models import Pack
from memstore.packs.selectors import pack_get


def actor_of(request: HttpRequest) -> Actor:
    """A signed-in browser session acts with every scope its user's roles allow."""
    user = request.user
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return ANONYMOUS
    assert isinstance(user, User)
    return Actor(user=user, scopes=None)


def user_of(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def visible_pack(request: HttpRequest, namespace: str, name: str) -> Pack:
    try:
        return pack_get(actor=actor_of(request), namespace=namespace, name=name)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def error_text(exc: Exception) -> str:
    """A one-line message for a registry, protocol or commerce error."""
    message = getattr(exc, "message", None) or str(exc)
    code = getattr(exc, "code", None)
    return f"{message} [{code}]" if code else str(message)


def client_ip(request: HttpRequest) -> str:
    """The client's address as DRF's throttles see it (``MEMSTORE_NUM_PROXIES`` aware)."""
    return str(BaseThrottle().get_ident(request) or "unknown")  # type: ignore[arg-type]
