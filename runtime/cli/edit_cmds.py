"""``memos edit``: change a memory's text, tags or priority as a principal.

Thin over :meth:`runtime.sdk.MemOS.update`: the engine checks that the
principal may change the memory (``access.denied`` otherwise, audited) and
records exactly one new version.

Not here: the access rule (:meth:`runtime.engine.engine.Engine.check_write`),
other memory commands (:mod:`runtime.cli.memory_cmds`).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from .common import AsOpt, JsonOpt, open_memos
from .errors import CLIError
from .output import emit_json, out

__all__ = ["edit"]


def edit(
    memory_id: Annotated[str, typer.Argument(help="Memory id.")],
    text: Annotated[str | None, typer.Option("--text", help="New text.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Replace the tags (repeatable).")
    ] = None,
    priority: Annotated[float | None, typer.Option(help="New priority, 0..1.")] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a memory (recorded as one new version; needs write access).

    Example:  memos edit acme/tips/notes/m1 --text "Deploys happen on Wednesdays" --as agent-7
    """
    if text is None and tag is None and priority is None:
        raise CLIError(
            "nothing to change", code="cli.usage", hint="Pass --text, --tag or --priority."
        )
    mem = open_memos(principal)
    try:
        memory = mem.update(
            memory_id, text=text, tags=tuple(tag) if tag is not None else None, priority=priority
        )
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
    else:
        out.print(f"{escape(memory_id)} is now version {memory.version}")
