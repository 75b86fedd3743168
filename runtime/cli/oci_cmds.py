"""OCI commands: ``memos push PACK oci://HOST/REPO:TAG`` (``memos install oci://...`` is
``install``'s, which hands ``oci://`` arguments to :func:`install_oci`).

Thin: parse, call :mod:`runtime.oci`, print (a rich progress bar for people, ``--json`` for
machines). Loopback registries are spoken to over plain HTTP; ``--plain-http`` forces it for
others (a registry on a private network without TLS). Errors propagate to ``main``'s table.

Not here: the client, the mapping and the checks (:mod:`runtime.oci`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from protocol import PublicKey

from ..install import InstallResult
from ..oci import OCIClient, install_from_oci, parse_reference, push_pack
from ..oci.push import PushProgress
from ..sdk import MemOS
from .common import JsonOpt
from .errors import CLIError
from .output import emit_json, err, out

__all__ = ["install_oci", "register"]

PlainHttpOpt = Annotated[
    bool,
    typer.Option("--plain-http", help="Use http:// (automatic for localhost and 127.0.0.1)."),
]


@contextmanager
def _bar(label: str, enabled: bool) -> Iterator[PushProgress | None]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=err, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task(escape(label), total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def push(
    pack: Annotated[Path, typer.Argument(help="The signed .memcube file to push.")],
    target: Annotated[str, typer.Argument(help="oci://HOST[:PORT]/REPO[:TAG] (tag: the version)")],
    plain_http: PlainHttpOpt = False,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Push a signed pack to an OCI registry (blobs it already has are not sent again).

    Example:  memos push tips.memcube oci://registry.example.com/acme/tips:1.2.0
    """
    reference = parse_reference(target)
    if not pack.is_file():
        raise CLIError(f"no such pack file: {pack}", code="cli.file_not_found")
    with (
        OCIClient.for_reference(reference, plain_http=plain_http or None) as client,
        _bar(f"push {target}", not quiet and not as_json) as progress,
    ):
        result = push_pack(pack, reference, client, progress=progress)
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(
        f"Pushed [bold]{escape(result.name)}@{escape(result.version)}[/] to "
        f"{escape(result.reference)}: {len(result.uploaded)} blob(s) uploaded "
        f"({result.bytes_uploaded} bytes), {len(result.skipped)} already there; "
        f"manifest {result.manifest_digest}"
    )


def install_oci(
    mem: MemOS,
    text: str,
    *,
    trusted_keys: list[PublicKey],
    lockfile: Path | None,
    progress: PushProgress | None = None,
    everything: bool = False,
) -> InstallResult:
    """``memos install oci://...``: called by ``install`` for each ``oci://`` argument."""
    return install_from_oci(
        mem.installer, text, trusted_keys=trusted_keys, lockfile=lockfile, progress=progress,
        actor=mem.principal, everything=everything,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the OCI commands to the memos app (help panel "OCI")."""
    app.command(name="push", rich_help_panel="OCI")(push)
