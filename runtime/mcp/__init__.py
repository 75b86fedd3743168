"""``memos mcp``: the local memory engine served over the Model Context Protocol.

Not here: the command line (:mod:`runtime.cli.mcp_cmds`).
"""

from __future__ import annotations

from .server import MemosMCP, build_server
from .tokens import McpTokens, TokenVerifier

__all__ = ["McpTokens", "MemosMCP", "TokenVerifier", "build_server"]
