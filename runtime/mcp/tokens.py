"""Bearer tokens for ``memos mcp`` over HTTP: who is calling, proven, not claimed.

Over stdio the client started the server, so the server's ``--as`` principal is
the caller. Over HTTP anyone who can reach the port can send a request; a
header naming a principal would let any local process read as any principal.
So an HTTP server with tokens issued (``memos mcp-token PRINCIPAL``) requires
``Authorization: Bearer <token>`` on every request (the ``mcp`` SDK's own
bearer middleware answers 401 otherwise) and runs each request as the
token's principal; without tokens it runs every request as ``--as`` and
listens on loopback only.

Only each token's sha256 is stored, in ``$MEMOS_HOME/mcp-tokens.json`` (mode
0600, replaced atomically): a copy of the file lets nobody in. A token is
shown once, when it is issued.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mcp.server.auth.provider import AccessToken

from ..errors import MemosError

__all__ = ["TOKENS_FILE", "McpTokens", "TokenVerifier"]

TOKENS_FILE = "mcp-tokens.json"
_PREFIX = "memos-mcp-"
SCOPE = "memos"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class McpTokens:
    """The tokens issued for one ``MEMOS_HOME``: sha256 -> principal."""

    path: Path
    principals: dict[str, str]

    @classmethod
    def load(cls, home: Path) -> McpTokens:
        path = home / TOKENS_FILE
        try:
            data = json.loads(path.read_text())
            entries = data["tokens"]
            principals = {str(e["sha256"]): str(e["principal"]) for e in entries}
        except FileNotFoundError:
            principals = {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MemosError(
                f"{path} is not a token file memos wrote: {exc}", code="mcp.bad_tokens_file"
            ) from exc
        return cls(path, principals)

    def issue(self, principal: str) -> str:
        """A new token for ``principal`` (returned once; only its digest is kept)."""
        if not principal.strip():
            raise MemosError("a token needs a principal name", code="mcp.bad_argument")
        token = _PREFIX + secrets.token_urlsafe(32)
        self.principals[_digest(token)] = principal
        self._save()
        return token

    def revoke(self, principal: str) -> int:
        """Remove every token of ``principal``; how many there were."""
        gone = [d for d, p in self.principals.items() if p == principal]
        for digest in gone:
            del self.principals[digest]
        if gone:
            self._save()
        return len(gone)

    def principal_of(self, token: str) -> str | None:
        return self.principals.get(_digest(token))

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        body = {"tokens": [{"sha256": d, "principal": p, "saved_at": now}
                           for d, p in sorted(self.principals.items())]}  # fmt: skip
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".mcp-tokens-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(body, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class TokenVerifier:
    """The ``mcp`` SDK's token verifier over :class:`McpTokens` (read once, at start)."""

    def __init__(self, tokens: McpTokens) -> None:
        self._tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = self._tokens.principal_of(token)
        if principal is None:
            return None
        return AccessToken(token=token, client_id=principal, scopes=[SCOPE])
