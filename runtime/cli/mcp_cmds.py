"""``memos mcp``: serve the local memory engine to MCP clients (stdio or streamable HTTP).

Thin: parse, build :func:`runtime.mcp.build_server` over :class:`runtime.MemOS`, run.
Not here: the tools themselves (:mod:`runtime.mcp.server`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..mcp import build_server
from .common import AsOpt, open_memos
from .errors import CLIError

__all__ = ["register"]


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

    Every call runs as --as (over HTTP a session may name its own with the
    Memos-Principal header); access policies and the audit log apply as in the SDK.

    Example:  memos mcp --as agent-7            (then point an MCP client at it)
    """
    if transport not in ("stdio", "http"):
        raise CLIError(f"--transport {transport!r}: use stdio or http", code="cli.bad_argument")
    mem = open_memos(principal)
    try:
        server = build_server(mem, allow_install=allow_install)
        if transport == "stdio":
            server.run("stdio")
        else:
            server.run("streamable-http", host=host, port=port, streamable_http_path=path)
    finally:
        mem.close()


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
