"""What the runtime's commands share: the :class:`~runtime.sdk.MemOS` they run on, and options.

Not here: printing (:mod:`.output`), errors (:mod:`.errors`), the commands themselves
(:mod:`.install_cmds`, :mod:`.memory_cmds`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from ..config import load_settings
from ..sdk import MemOS
from .errors import CLIError

__all__ = ["AsOpt", "JsonOpt", "RegistryOpt", "open_memos"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
AsOpt = Annotated[
    str | None,
    typer.Option("--as", help="Principal (agent or user id) to act as; default MEMOS_PRINCIPAL."),
]
RegistryOpt = Annotated[
    str | None, typer.Option("--registry", help="Registry URL (default: MEMOS_REGISTRY / config).")
]


def open_memos(
    principal: str | None = None,
    registry: str | None = None,
    *,
    on_stage: Callable[[str], None] | None = None,
) -> MemOS:
    """The MemOS of ``MEMOS_HOME`` with the command's options; the caller closes it."""
    return MemOS(principal=principal, registry=registry, on_stage=on_stage)


def registry_url(option: str | None) -> str:
    """The registry a command talks to: ``--registry``, else the configured one."""
    return (option or load_settings().registry).rstrip("/")


def registry_token(url: str) -> str:
    """The saved token for ``url`` (exactly that origin), or ``registry.not_authenticated``."""
    token = load_settings().token_for(url)
    if not token:
        raise CLIError("not logged in to " + url, code="registry.not_authenticated")
    return token
