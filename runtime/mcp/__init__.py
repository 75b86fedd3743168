"""``memos mcp``: the local memory engine served over the Model Context Protocol.

Not here: the command line (:mod:`runtime.cli.mcp_cmds`).
"""

from __future__ import annotations

from .server import PRINCIPAL_HEADER, MemosMCP, build_server

__all__ = ["PRINCIPAL_HEADER", "MemosMCP", "build_server"]
