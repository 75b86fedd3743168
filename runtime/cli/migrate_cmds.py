"""``memos migrate``: rewrite a MIP 1.x pack as MIP 2.0, signed again by the publisher.

A thin wrapper over :func:`protocol.migrate_pack`: parse, call, print.

Not here: the migration itself (``protocol.migrate``), key storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from protocol import migrate_pack

from .common import JsonOpt
from .output import emit_json, out
from .pack_cmds import _load_signing_key

__all__ = ["migrate", "register"]


def migrate(
    file: Annotated[Path, typer.Argument(help="The MIP 1.x .memcube to migrate.")],
    key: Annotated[Path, typer.Option("--key", help="The publisher's private key (re-signs).")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of replacing FILE.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rewrite a pack as MIP 2.0: text split into blobs, signed again by KEY.

    The old signatures cover the 1.x manifest and are dropped; a pack that is
    already 2.x only gains KEY's signature.

    Example:  memos migrate my-pack.memcube --key keys/memos-signing.key --out my-pack.v2.memcube
    """
    target = out_file if out_file is not None else file
    pack = migrate_pack(file, target, key=_load_signing_key(key))
    summary = {
        "name": pack.manifest.name,
        "version": pack.manifest.version,
        "mip_version": pack.manifest.mip_version,
        "file": str(target),
        "sha256": pack.file_sha256,
        "size": pack.file_size,
        "blobs": len({p.sha256 for p in pack.manifest.payloads()}),
        "signers": [s.keyid for s in pack.signatures],
    }
    if as_json:
        emit_json(summary)
        return
    out.print(
        f"Migrated {pack.manifest.ref} to MIP {pack.manifest.mip_version}: {target} "
        f"({summary['blobs']} blobs, {pack.file_size} bytes), "
        f"signed by {pack.signatures[-1].keyid[:16]}"
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Packs")(migrate)
