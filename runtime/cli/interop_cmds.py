"""``memos import`` and ``memos export``: other memory systems' formats to and from MIP packs.

Thin: parse, call :mod:`runtime.interop`, print. Not here: the formats
(:mod:`runtime.interop`), pack signing rules (:mod:`protocol`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from protocol import PublicKey, SigningKey

from ..interop import (
    EXPORTERS,
    IMPORTERS,
    ImportOptions,
    export_memories,
    from_installed,
    from_pack_file,
    import_to_pack,
)
from ..models.embedding import default_embedder
from ..sdk import is_pack_file
from .common import AsOpt, JsonOpt, open_memos
from .errors import CLIError
from .output import emit_json, out

__all__ = ["register"]


def _signing_key(path: Path) -> SigningKey:
    if not path.is_file():
        raise CLIError(f"--key {path}: no such file", code="cli.bad_argument",
                       hint="Create a key pair with: memos keygen --out keys")  # fmt: skip
    password = os.environ.get("MEMOS_KEY_PASSWORD")
    return SigningKey.from_pem(path.read_bytes(), password.encode() if password else None)


def _report_table(rows: list[tuple[str, str, str]], title: str) -> None:
    table = Table("item", "what", "why", title=title)
    for item, what, why in rows[:50]:
        table.add_row(escape(item[:30]), escape(what), escape(why))
    out.print(table)
    if len(rows) > 50:
        out.print(f"… and {len(rows) - 50} more (--json lists all)")


def import_cmd(
    source: Annotated[Path, typer.Argument(help="The other system's export (file or folder).")],
    fmt: Annotated[str, typer.Option("--from", help="|".join(sorted(IMPORTERS)))],
    name: Annotated[str, typer.Option("--name", help="The pack's name, NS/NAME.")],
    key: Annotated[Path, typer.Option("--key", help="Private key to sign the pack with.")],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Pack file (default: NS__NAME.memcube).")
    ] = None,
    version: Annotated[str, typer.Option("--version", help="The pack's version.")] = "1.0.0",
    with_messages: Annotated[
        bool, typer.Option("--with-messages", help="letta: import the messages too.")
    ] = False,
    skip_pickled: Annotated[
        bool,
        typer.Option(
            "--skip-pickled",
            help="memos: import the text and leave a pickled activation memory "
            "(never loaded) behind.",
        ),
    ] = False,
    trusted_key: Annotated[
        list[Path] | None, typer.Option("--trusted-key", help="amp: accept only this signer.")
    ] = None,
    embed: Annotated[
        bool, typer.Option("--embed", help="Store embeddings (MEMOS_EMBEDDER) in the pack.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import another memory system's export as a signed MIP pack.

    Example:  memos import --from mem0 mem0-export.json --name me/notes --key keys/memos-signing.key
    """
    target = out_path or Path(f"{name.replace('/', '__')}.memcube")
    options = ImportOptions(
        with_messages=with_messages, skip_pickled=skip_pickled,
        trusted_keys=tuple(PublicKey.load(p.read_bytes()) for p in trusted_key or ()),
    )  # fmt: skip
    result = import_to_pack(
        fmt, source, target, name=name, key=_signing_key(key), version=version,
        options=options, embedder=default_embedder() if embed else None,
    )  # fmt: skip
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(f"Imported {result.memories} memories from {escape(result.system)} into "
              f"{escape(result.out)} ({escape(name)}@{escape(version)}, signed)")  # fmt: skip
    if result.skipped:
        _report_table([(s.item, s.what, s.reason) for s in result.skipped], "Left behind")


def export_cmd(
    source: Annotated[str, typer.Argument(help="An installed pack's name, or a .memcube file.")],
    fmt: Annotated[str, typer.Option("--to", help="|".join(sorted(EXPORTERS)))],
    out_path: Annotated[Path, typer.Option("--out", help="The file to write.")],
    key: Annotated[
        Path | None, typer.Option("--key", help="amp: private key to sign the AMP pack.")
    ] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a pack's memories to another memory system's format, with a loss report.

    Example:  memos export me/notes --to mcp-memory --out memory.jsonl
    """
    if is_pack_file(source):
        memories = from_pack_file(Path(source))
    else:
        mem = open_memos(principal)
        try:
            mem.installer.manifest(source)  # install.not_installed when it is not there
            memories = from_installed(mem, source)
        finally:
            mem.close()
    report = export_memories(fmt, memories, out_path, key=_signing_key(key) if key else None)
    if as_json:
        emit_json(report.to_dict())
        return
    out.print(f"Exported {report.memories} memories to {escape(report.out)} ({fmt})")
    if report.not_carried:
        _report_table([(s.item, s.what, s.reason) for s in report.not_carried],
                      f"Not carried by {fmt}")  # fmt: skip
    else:
        out.print("Nothing was left out.")


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
