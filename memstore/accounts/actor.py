"""Who is acting: a user (or nobody) and what their credentials allow.

Built once per request at the edge (the API layer) and passed to services and
selectors, which never look at HTTP requests themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .models import User

READ = "read"
PUBLISH_ANY = "publish:*"
#: May create further tokens (each with a subset of its own scopes).
TOKENS_CREATE = "tokens:create"
#: Members, signing keys and namespace settings of any namespace the user owns/maintains.
ADMIN_ANY = "admin:*"


def publish_scope(namespace: str) -> str:
    return f"publish:{namespace}"


def admin_scope(namespace: str) -> str:
    return f"admin:{namespace}"


@dataclass(frozen=True)
class Actor:
    """``scopes`` is None for a browser session or an internal caller: all scopes.

    ``token_expires_at`` is when the token acting expires (None: a session or no expiry);
    a token it creates may not outlive it.
    """

    user: User | None
    scopes: frozenset[str] | None = None
    token_expires_at: datetime | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None

    def has_scope(self, scope: str) -> bool:
        if self.scopes is None:
            return True
        if scope in self.scopes:
            return True
        if scope.startswith("publish:"):
            return PUBLISH_ANY in self.scopes
        return scope.startswith("admin:") and ADMIN_ANY in self.scopes

    @property
    def is_session(self) -> bool:
        """A browser session, a password login or an internal caller (no token scopes)."""
        return self.user is not None and self.scopes is None

    def can_read_with_credentials(self) -> bool:
        """Private or paid content needs a session or a token with the read scope."""
        return self.user is not None and (
            self.scopes is None
            or READ in self.scopes
            or any(s.startswith("publish:") for s in self.scopes)
        )


ANONYMOUS = Actor(user=None, scopes=frozenset())


def system_actor(user: User) -> Actor:
    """An internal caller acting fully as ``user`` (management commands, seeding)."""
    return Actor(user=user, scopes=None)
