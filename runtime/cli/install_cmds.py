"""Pack commands of the runtime: install, list, remove, upgrade, gc.

Thin: parse, call :class:`runtime.MemOS`, print (rich for people, with a
progress bar per download; ``--json`` for machines). Errors propagate to
``main``'s table. Not here: the memory engine's commands (:mod:`.memory_cmds`),
building and publishing packs (:mod:`.pack_cmds`, :mod:`.registry_cmds`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from protocol import PublicKey

from ..download import ProgressFn
from ..install import InstallResult
from ..lockfile import LOCKFILE_NAME
from ..oci import is_oci_reference
from ..sdk import is_pack_file
from .common import JsonOpt, RegistryOpt, open_memos
from .errors import CLIError
from .oci_cmds import install_oci
from .output import emit_json, err, out

__all__ = ["register", "verify_installed"]

ProgressFactory = Callable[[str], ProgressFn | None]
LockfileOpt = Annotated[Path, typer.Option("--lockfile", help="Lockfile to read/update.")]
PackArgs = Annotated[
    list[str] | None, typer.Argument(help="NS/NAME[@VERSION|@RANGE] or ./FILE.memcube")
]
AllOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Fetch every model's KV caches and adapters, not only MEMOS_MODEL_FINGERPRINT's.",
    ),
]
TrustedKeyOpt = Annotated[
    list[Path] | None,
    typer.Option("--trusted-key", help="Public key trusted for local files (repeatable)."),
]


@contextmanager
def _progress(enabled: bool) -> Iterator[ProgressFactory]:
    """Yield a factory ``label -> ProgressFn`` backed by one rich progress display."""
    if not enabled:
        yield lambda label: None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err, transient=False,
    ) as bar:  # fmt: skip

        def factory(label: str) -> ProgressFn:
            task = bar.add_task(escape(label), total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return update

        yield factory


def _stage(message: str) -> None:
    err.print(f"[dim]{escape(message)}…[/]")


def install(
    refs: PackArgs = None,
    registry: RegistryOpt = None,
    locked: Annotated[
        bool, typer.Option("--locked", help="Install exactly what memos.lock says.")
    ] = False,
    lockfile: LockfileOpt = Path(LOCKFILE_NAME),
    no_lock: Annotated[bool, typer.Option("--no-lock", help="Do not write memos.lock.")] = False,
    trusted_key: TrustedKeyOpt = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    fetch_all: AllOpt = False,
) -> None:
    """Install packs from the registry or local files: verified, resumable per blob, atomic.

    Only the blobs this runtime uses are fetched (plaintext, and the KV caches
    and adapters of MEMOS_MODEL_FINGERPRINT's model when it is set); blobs
    already in the cache are not fetched again.

    Example:  memos install acme/rust-tips@^1.2      (or ./tips.memcube --trusted-key acme.pub)
    Example:  memos install --locked                 (reproduce memos.lock exactly)
    Example:  memos install acme/kv-pack --all       (every model's KV caches too)
    """
    show = not quiet and not as_json
    mem = open_memos(registry=registry, on_stage=_stage if show else None)
    results: list[InstallResult] = []
    try:
        with _progress(show) as progress:
            if locked:
                if refs:
                    raise CLIError(
                        "--locked installs the lockfile; give no packs", code="cli.bad_argument"
                    )
                results = mem.install_locked(lockfile, progress=progress, everything=fetch_all)
            else:
                if not refs:
                    raise CLIError("name a pack or a .memcube file", code="cli.bad_argument",
                                   hint="Example: memos install acme/rust-tips")
                keys = [PublicKey.load(p.read_bytes()) for p in trusted_key or []]
                lf = None if no_lock else lockfile
                for ref in refs:
                    if is_oci_reference(ref):  # oci://HOST/REPO:TAG (runtime.oci)
                        results.append(install_oci(mem, ref, trusted_keys=keys, lockfile=lf,
                                                   progress=progress(ref),
                                                   everything=fetch_all))  # fmt: skip
                        continue
                    bar = None if is_pack_file(ref) else progress(ref)
                    results.append(mem.install(ref, trusted_keys=keys, lockfile=lf, progress=bar,
                                               everything=fetch_all))  # fmt: skip
    finally:
        mem.close()
    if as_json:
        emit_json([r.to_dict() for r in results])
        return
    for r in results:
        for w in r.warnings:
            err.print(f"[yellow]warning[/] {escape(w)}")
        if r.changed:
            was = f" (was {r.previous_version})" if r.previous_version else ""
            signers = ", ".join(k[:12] for k in r.signed_by)
            out.print(f"Installed [bold]{escape(r.name)}@{r.version}[/]{was}: {r.memories} "
                      f"memories, sha256 {r.sha256[:16]}…, signed by {signers}")
        else:
            out.print(f"{escape(r.name)}@{r.version} is already installed")


def list_packs(as_json: JsonOpt = False) -> None:
    """List installed packs.

    Example:  memos list --json
    """
    mem = open_memos()
    try:
        packs = mem.installed()
    finally:
        mem.close()
    if as_json:
        emit_json([p.to_dict() for p in packs])
        return
    if not packs:
        out.print("No packs installed. Try: memos install NS/NAME")
        return
    table = Table("pack", "version", "memories", "sha256", "registry")
    for p in packs:
        table.add_row(escape(p.name), p.version, str(p.memories), p.sha256[:16] + "…",
                      escape(p.registry or "(file)"))
    out.print(table)


def remove(
    name: Annotated[str, typer.Argument(help="Installed pack NS/NAME.")],
    lockfile: Annotated[Path, typer.Option("--lockfile")] = Path(LOCKFILE_NAME),
    as_json: JsonOpt = False,
) -> None:
    """Uninstall a pack (its memories' history is kept; cached files are freed).

    Example:  memos remove acme/rust-tips
    """
    mem = open_memos()
    try:
        count = mem.remove(name, lockfile=lockfile)
    finally:
        mem.close()
    if as_json:
        emit_json({"removed": name, "memories": count})
    else:
        out.print(f"Removed {escape(name)} ({count} memories)")


def upgrade(
    names: Annotated[
        list[str] | None, typer.Argument(help="Packs to upgrade (default: all).")
    ] = None,
    registry: RegistryOpt = None,
    lockfile: Annotated[Path, typer.Option("--lockfile")] = Path(LOCKFILE_NAME),
    no_lock: Annotated[bool, typer.Option("--no-lock")] = False,
    as_json: JsonOpt = False,
    fetch_all: AllOpt = False,
) -> None:
    """Upgrade installed packs to the highest version (optionally within a range).

    Only blobs the new version changed are downloaded.

    Example:  memos upgrade acme/rust-tips@^1
    """
    mem = open_memos(registry=registry)
    try:
        with _progress(not as_json) as progress:
            results = mem.upgrade(names or [], progress=progress,
                                  lockfile=None if no_lock else lockfile, everything=fetch_all)
    finally:
        mem.close()
    if as_json:
        emit_json([r.to_dict() for r in results])
        return
    if not results:  # without a word, an empty run looks like a hang or a failure
        out.print("Nothing to upgrade: no pack here was installed from a registry "
                  "(a file-installed pack upgrades by installing a newer file).")
    for r in results:
        state = f"{r.previous_version} -> {r.version}" if r.changed else f"{r.version} (up to date)"
        out.print(f"{escape(r.name)}: {state}")


def verify_installed(packs: list[str], as_json: bool) -> None:
    """``memos verify --installed [PACK...]``: re-hash cached blobs, name every bad one."""
    mem = open_memos()
    try:
        problems = mem.verify_installed(packs)
        checked = packs or [p.name for p in mem.installed()]
    finally:
        mem.close()
    if as_json:
        emit_json({
            "ok": not problems, "packs": checked,
            "problems": [{"pack": n, "sha256": p.sha256, "code": p.code, "message": p.message}
                         for n, p in problems],
        })  # fmt: skip
    else:
        for name, p in problems:
            out.print(f"[red]BAD[/] {escape(name)}: {p.sha256} [{p.code}] {escape(p.message)}")
        if not problems:
            out.print(f"[green]OK[/] every cached blob of {len(checked)} pack(s) matches")
    if problems:
        raise CLIError(
            f"{len(problems)} cached blob(s) do not match their digest", code="cache.blob_corrupt",
            hint="Install the pack again (memos install NAME or ./FILE.memcube): bad blobs "
            "are replaced.",
        )  # fmt: skip


def gc(as_json: JsonOpt = False) -> None:
    """Delete cached blobs nothing refers to any more.

    Example:  memos gc
    """
    mem = open_memos()
    try:
        removed = mem.gc()
    finally:
        mem.close()
    if as_json:
        emit_json({"removed": removed})
    else:
        out.print(f"Freed {len(removed)} blob(s)")


def register(app: typer.Typer) -> None:
    """Add the pack commands to the memos app (help panel "Install")."""
    commands: tuple[tuple[Callable[..., None], str], ...] = (
        (install, "install"), (list_packs, "list"), (remove, "remove"), (upgrade, "upgrade"),
        (gc, "gc"),
    )  # fmt: skip
    for command, name in commands:
        app.command(name=name, rich_help_panel="Install")(command)
