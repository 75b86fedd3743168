"""Entry point of the ``memos`` command: builds the app and maps errors to exit codes.

Exit codes: 0 success; 1 a check failed or an operation was refused (the
stable error code and a one-line explanation are printed); 2 usage errors.
Tracebacks only with ``MEMOS_DEBUG=1``.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from ..config import load_settings
from . import (
    install_cmds,
    interop_cmds,
    log_cmds,
    mcp_cmds,
    memory_cmds,
    migrate_cmds,
    model_cmds,
    oci_cmds,
    pack_cmds,
    registry_cmds,
)
from .errors import render
from .output import err

__all__ = ["app", "main"]

app = typer.Typer(
    name="memos",
    help="memos: build, sign, verify, publish and install AI memory packs (MIP 1.1 and 2.0).",
    epilog="Example:  memos init my-pack --name acme/tips && memos pack my-pack --out tips.memcube",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

pack_cmds.register(app)
install_cmds.register(app)
memory_cmds.register(app)
registry_cmds.register(app)
model_cmds.register(app)
oci_cmds.register(app)
migrate_cmds.register(app)
mcp_cmds.register(app)
interop_cmds.register(app)
log_cmds.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (also used by tests)."""
    settings = load_settings()
    try:
        # Standalone mode lets Typer report usage errors (exit 2) and --help;
        # everything else that escapes a command is ours to render.
        app(args=argv, prog_name="memos")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        if settings.debug:
            raise
        code, message, hint, _detail = render(exc)
        err.print(f"[bold red]error[/] {escape(f'[{code}]')} {escape(message)}")
        if hint:
            err.print(f"[dim]hint:[/] {escape(hint)}")
        return 1
    return 0


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
