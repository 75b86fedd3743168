"""``memos mcp``: serve the local memory engine to MCP clients (stdio or streamable HTTP).

Thin: parse, build :func:`runtime.mcp.build_server` over :class:`runtime.MemOS`, run.
``memos mcp-token`` issues and revokes the bearer tokens an HTTP server requires
(:mod:`runtime.mcp.tokens`). Not here: the tools themselves (:mod:`runtime.mcp.server`).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from ..config import load_settings
from ..mcp import McpTokens, TokenVerifier, build_server
from .common import AsOpt, open_memos
from .errors import CLIError
from .output import err, out

__all__ = ["register"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mcp(
    transport: Annotated[
        str, typer.Option("--transport", help="stdio (default) or http (streamable HTTP).")
    ] = "stdio",
    host: Annotated[str, typer.Option("--host", help="HTTP: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP: port to listen on.")] = 8765,
    path: Annotated[str, typer.Option("--path", help="HTTP: the endpoint's path.")] = "/mcp",
    allow_install: Annotated[
        bool, typer.Option("--allow-install", help="Let clients install packs (off by default).")
    ] = False,
    principal: AsOpt = None,
) -> None:
    """Serve search, plan, memories and packs over the Model Context Protocol.

    Every call runs as --as. Over HTTP, once tokens are issued with
    `memos mcp-token NAME`, every request needs `Authorization: Bearer TOKEN`
    and runs as that token's principal; without tokens the server listens on
    loopback only. Access policies and the audit log apply as in the SDK.

    Example:  memos mcp --as agent-7            (then point an MCP client at it)
    """
    if transport not in ("stdio", "http"):
        raise CLIError(f"--transport {transport!r}: use stdio or http", code="cli.bad_argument")
    tokens = McpTokens.load(load_settings().home) if transport == "http" else None
    if tokens is not None and not tokens.principals and not _loopback(host):
        raise CLIError(
            f"--host {host}: without tokens anyone who reaches the port would act as the "
            "server's principal",
            code="mcp.insecure",
            hint="Issue tokens first (memos mcp-token NAME), or listen on 127.0.0.1.",
        )
    mem = open_memos(principal)
    try:
        if transport == "stdio":
            build_server(mem, allow_install=allow_install).run("stdio")
            return
        assert tokens is not None
        url = f"http://{host}:{port}{path}"
        verifier = TokenVerifier(tokens) if tokens.principals else None
        mode = (f"bearer tokens required ({len(tokens.principals)} issued)" if verifier
                else f"no tokens issued: every request runs as {mem.principal}")  # fmt: skip
        err.print(f"memos mcp: serving {url} ({mode})")
        server = build_server(mem, allow_install=allow_install, tokens=verifier, url=url)
        server.run("streamable-http", host=host, port=port, streamable_http_path=path)
    finally:
        mem.close()


def mcp_token(
    principal: Annotated[str, typer.Argument(help="The principal the token acts as.")],
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Remove every token of this principal instead.")
    ] = False,
) -> None:
    """Issue a bearer token for `memos mcp --transport http` (shown once), or revoke.

    Example:  memos mcp-token agent-7
    """
    tokens = McpTokens.load(load_settings().home)
    if revoke:
        count = tokens.revoke(principal)
        out.print(f"Revoked {count} token(s) of {principal}.")
        return
    token = tokens.issue(principal)
    out.print(token, markup=False, highlight=False)
    err.print(f"A token for {principal} (shown once; only its digest is kept in {tokens.path}).")


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
    app.command("mcp-token")(mcp_token)
