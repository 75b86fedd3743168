"""Who is acting: a user (or nobody) and what their credentials allow.

Built once per request at the edge (the API layer) and passed to services and
selectors, which never look at HTTP requests themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import User

READ = "read"
PUBLISH_ANY = "publish:*"


def publish_scope(namespace: str) -> str:
    return f"publish:{namespace}"


@dataclass(frozen=True)
class Actor:
    """``scopes`` is None for a browser session or an internal caller: all scopes."""

    user: User | None
    scopes: frozenset[str] | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None

    def has_scope(self, scope: str) -> bool:
        if self.scopes is None:
            return True
        if scope in self.scopes:
            return True
        return scope.startswith("publish:") and PUBLISH_ANY in self.scopes

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
