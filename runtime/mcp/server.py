"""The MCP server over one :class:`runtime.MemOS`: tools and resources, each call as a principal.

Every tool calls the SDK (``runtime.sdk.MemOS``), so access policies and the audit
log apply exactly as they do for the SDK and the CLI; nothing here decides who may
read what. The principal is the one given at start (``memos mcp --as``), or, over
streamable HTTP with tokens issued, the principal of the request's bearer token
(:mod:`runtime.mcp.tokens`: proven by the token, never claimed by a header).
Reads of one memory's history and writes to a memory first check it as the
principal (the engine's own access check), so a memory the principal may not read can neither
be shown nor changed through this server.

Tools are ``async`` and call the engine inline: the engine's SQLite connection
stays on the event loop's thread and calls are served one at a time.

Not here: the command line and transports' options (:mod:`runtime.cli.mcp_cmds`).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from protocol import AccessPolicy, MIPError

from ..engine.lifecycle import Event
from ..engine.scheduler import Budget
from ..engine.types import Filters
from ..errors import MemosError
from ..sdk import MemOS
from .tokens import SCOPE, TokenVerifier

__all__ = ["MemosMCP", "build_server"]
MAX_K = 100


def _when(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ToolError(f"[mcp.bad_argument] {field}: {text!r} is not an ISO time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class MemosMCP:
    """The tools over one MemOS; :meth:`as_principal` gives the SDK object for a call."""

    def __init__(self, memos: MemOS, *, allow_install: bool = False) -> None:
        self.memos = memos
        self.allow_install = allow_install

    def as_principal(self, ctx: Context | None) -> MemOS:
        """The MemOS acting as this request's principal (its token's, else the start one)."""
        token = get_access_token()  # set by the SDK's bearer middleware, over HTTP only
        principal = token.client_id if token is not None else None
        if not principal or principal == self.memos.principal:
            return self.memos
        view = copy.copy(self.memos)  # same engine, installer and scheduler; another reader
        view.principal = principal
        return view


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a library call; our errors become tool errors that carry their stable code."""
    try:
        return fn(*args, **kwargs)
    except (MemosError, MIPError) as exc:
        raise ToolError(f"[{exc.code}] {exc.message}") from exc


def _readable(mem: MemOS, memory_id: str) -> None:
    """Refuse (``access.denied``) a memory the principal may not read; not counted as a use."""
    _call(mem.engine.get, memory_id, principal=mem.principal, record=False)


def build_server(
    memos: MemOS,
    *,
    allow_install: bool = False,
    tokens: TokenVerifier | None = None,
    url: str | None = None,
) -> MCPServer:
    """An :class:`MCPServer` with memos' tools and resources, run as ``memos``'s principal.

    With ``tokens`` (HTTP at ``url``), every request must carry a bearer token
    and runs as its principal; the SDK's middleware answers 401 to the rest.
    """
    app = MemosMCP(memos, allow_install=allow_install)
    auth: dict[str, Any] = {}
    if tokens is not None:
        if url is None:
            raise ValueError("a server with tokens needs its URL")
        # The tokens are issued here (memos mcp-token): this server is its own issuer.
        settings = AuthSettings(issuer_url=url, resource_server_url=url, required_scopes=[SCOPE])  # type: ignore[arg-type]
        auth = {"token_verifier": tokens, "auth": settings}
    server: MCPServer = MCPServer(
        name="memos",
        instructions=(
            "Local AI memory (MemStore). search finds memories you may read; plan says what "
            "to inject for a query and why; add/update/forget change memories (every change "
            "is a new version: history and rollback undo it)."
        ),
        **auth,
    )

    @server.tool()
    async def search(
        query: str,
        ctx: Context,
        k: int = 10,
        tags: list[str] | None = None,
        pack: str | None = None,
        include_archived: bool = False,
        min_similarity: float | None = None,
    ) -> dict[str, Any]:
        """Hybrid search (semantic + keyword) of the memories this principal may read."""
        filters = Filters(tags=tuple(tags or ()), pack=pack)
        hits = _call(
            app.as_principal(ctx).search, query, k=max(1, min(k, MAX_K)), filters=filters,
            include_archived=include_archived, min_similarity=min_similarity,
        )  # fmt: skip
        return {"hits": [h.to_dict() for h in hits]}

    @server.tool()
    async def plan(
        query: str, ctx: Context, budget: int = 512, max_items: int = 20, dry_run: bool = False
    ) -> dict[str, Any]:
        """What the scheduler would inject for a query, in which form, and why (its reasons)."""
        result = _call(
            app.as_principal(ctx).plan, query, Budget(budget, None, max_items), dry_run=dry_run
        )
        return dict(result.to_dict())

    @server.tool()
    async def get_memory(memory_id: str, ctx: Context, as_of: str | None = None) -> dict[str, Any]:
        """One memory, now or as it was at an ISO time (as_of)."""
        mem = app.as_principal(ctx)
        when = _when(as_of, "as_of")
        memory = _call(mem.as_of, memory_id, when) if when else _call(mem.get, memory_id)
        return dict(memory.to_dict())

    @server.tool()
    async def add_memory(
        text: str,
        ctx: Context,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        priority: float = 0.5,
        private_to: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add a plaintext memory; private_to restricts who may read it."""
        access = AccessPolicy("private", tuple(private_to)) if private_to else AccessPolicy()
        memory = _call(
            app.as_principal(ctx).add, text, tags=tuple(tags or ()), metadata=metadata or {},
            priority=priority, access=access,
        )  # fmt: skip
        return dict(memory.to_dict())

    @server.tool()
    async def update_memory(
        memory_id: str,
        ctx: Context,
        text: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        priority: float | None = None,
    ) -> dict[str, Any]:
        """Change a memory (a new version; rollback restores an earlier one)."""
        mem = app.as_principal(ctx)
        _readable(mem, memory_id)
        memory = _call(
            mem.update, memory_id, text=text, tags=tags, metadata=metadata, priority=priority
        )
        return dict(memory.to_dict())

    @server.tool()
    async def forget_memory(memory_id: str, ctx: Context) -> dict[str, Any]:
        """Remove a memory from retrieval (its history is kept; rollback brings it back)."""
        mem = app.as_principal(ctx)
        _readable(mem, memory_id)
        return dict(_call(mem.transition, memory_id, Event.REMOVE).to_dict())

    @server.tool()
    async def history(memory_id: str, ctx: Context) -> dict[str, Any]:
        """Every version of a memory: who changed what, when."""
        mem = app.as_principal(ctx)
        _readable(mem, memory_id)
        return {"versions": [v.to_dict() for v in _call(mem.history, memory_id)]}

    @server.tool()
    async def rollback(memory_id: str, version: int, ctx: Context) -> dict[str, Any]:
        """Restore an earlier version of a memory (recorded as a new version)."""
        mem = app.as_principal(ctx)
        _readable(mem, memory_id)
        return dict(_call(mem.rollback, memory_id, version).to_dict())

    @server.tool()
    async def list_packs() -> dict[str, Any]:
        """The packs installed in this MEMOS_HOME."""
        return {"packs": [p.to_dict() for p in _call(app.memos.installed)]}

    @server.tool()
    async def install_pack(ref: str, ctx: Context) -> dict[str, Any]:
        """Install NS/NAME[@SPEC] from the registry or a local .memcube (pinned keys only).

        Off unless the server was started with --allow-install."""
        if not app.allow_install:
            raise ToolError(
                "[mcp.install_disabled] installing is off; restart with memos mcp --allow-install"
            )
        result = _call(app.as_principal(ctx).install, ref)
        return {"name": result.name, "version": result.version, "memories": result.memories}

    @server.resource("memos://packs", mime_type="application/json")
    async def packs_resource() -> list[dict[str, Any]]:
        """The installed packs."""
        return [p.to_dict() for p in app.memos.installed()]

    @server.resource("memos://packs/{namespace}/{name}", mime_type="application/json")
    async def pack_memories(namespace: str, name: str) -> list[dict[str, Any]]:
        """The memories of one installed pack that the server's principal may read."""
        memories = app.memos.engine.list_memories(
            Filters(pack=f"{namespace}/{name}"), limit=10_000, principal=app.memos.principal
        )
        return [m.to_dict() for m in memories]

    return server
