"""Who a DRF request is: authentication by ``Authorization: Bearer mst_...`` API tokens,
and :func:`actor_of`, the :class:`~memstore.accounts.actor.Actor` a request acts as.

Not here: the web UI's browser sessions (``frontend``), token writes (``services``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .actor import ANONYMOUS, Actor
from .models import ApiToken
from .selectors import api_token_by_raw
from .services import api_token_touch

__all__ = ["TokenAuthentication", "actor_of"]


def actor_of(request: Request) -> Actor:
    """A token acts with its scopes; a signed-in session with every scope of its roles."""
    user = request.user
    if user is None or not user.is_authenticated:
        return ANONYMOUS
    auth = request.auth
    if isinstance(auth, ApiToken):
        return Actor(user=user, scopes=frozenset(auth.scopes), token_expires_at=auth.expires_at)
    return Actor(user=user, scopes=None)


class TokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode("latin-1") not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("malformed Authorization header")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("malformed token") from None
        token = api_token_by_raw(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid, expired or revoked token")
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="memstore"'
