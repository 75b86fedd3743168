"""Runtime commands: install/list/remove/upgrade packs, and the local engine
(add, search, plan, show, history, rollback, lifecycle, maintain, audit, gc).

Thin: parse, call :class:`runtime.MemOS` / the installer, print (rich for
people, ``--json`` for machines). Errors propagate to ``main``'s table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

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

from protocol import AccessPolicy, PublicKey

from ..download import ProgressFn
from ..engine.lifecycle import Event
from ..engine.scheduler import Budget
from ..engine.types import Filters
from ..lockfile import LOCKFILE_NAME
from .errors import CLIError
from .output import emit_json, err, out

__all__ = ["register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
AsOpt = Annotated[str | None, typer.Option("--as", help="Principal (agent or user id) to act as; default MEMOS_PRINCIPAL.")]
RegistryOpt = Annotated[str | None, typer.Option("--registry", help="Registry URL (default: MEMOS_REGISTRY / config).")]


def _memos(principal: str | None = None, registry: str | None = None) -> Any:
    from ..sdk import MemOS

    return MemOS(principal=principal, registry=registry)


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CLIError(f"{option}: {text!r} is not an ISO date or time", code="cli.bad_argument") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """Yield a factory ``label -> ProgressFn`` backed by one rich progress display."""
    if not enabled:
        yield lambda label: None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err, transient=False,
    ) as bar:
        def factory(label: str) -> ProgressFn:
            task = bar.add_task(escape(label), total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return update

        yield factory


# ------------------------------------------------------------------ packs


def install(
    refs: Annotated[list[str] | None, typer.Argument(help="NS/NAME[@VERSION|@RANGE] or ./FILE.memcube")] = None,
    registry: RegistryOpt = None,
    locked: Annotated[bool, typer.Option("--locked", help="Install exactly what memos.lock says.")] = False,
    lockfile: Annotated[Path, typer.Option("--lockfile", help="Lockfile to read/update.")] = Path(LOCKFILE_NAME),
    no_lock: Annotated[bool, typer.Option("--no-lock", help="Do not write memos.lock.")] = False,
    trusted_key: Annotated[list[Path] | None, typer.Option("--trusted-key", help="Public key trusted for local files (repeatable).")] = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Install packs from the registry or local files: verified, resumable, atomic.

    Example:  memos install acme/rust-tips@^1.2      (or ./tips.memcube --trusted-key acme.pub)
    Example:  memos install --locked                 (reproduce memos.lock exactly)
    """
    mem = _memos(registry=registry)
    if not quiet and not as_json:
        mem.installer.on_stage = lambda message: err.print(f"[dim]{escape(message)}…[/]")
    results = []
    try:
        with _progress(not quiet and not as_json) as progress:
            if locked:
                if refs:
                    raise CLIError("--locked installs the lockfile; give no packs", code="cli.bad_argument")
                results = mem.installer.install_locked(
                    lockfile, registry=mem.registry, token=mem.token, progress=progress, actor=mem.principal
                )
            else:
                if not refs:
                    raise CLIError("name a pack or a .memcube file", code="cli.bad_argument",
                                   hint="Example: memos install acme/rust-tips")
                keys = [PublicKey.load(p.read_bytes()) for p in trusted_key or []]
                for ref in refs:
                    lf = None if no_lock else lockfile
                    if ref.endswith(".memcube") or Path(ref).is_file():
                        results.append(mem.installer.install_file(Path(ref), trusted_keys=keys, lockfile=lf,
                                                                  actor=mem.principal))
                    else:
                        results.append(mem.installer.install(ref, registry=mem.registry, token=mem.token,
                                                             progress=progress(ref), lockfile=lf,
                                                             actor=mem.principal))
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
            out.print(f"Installed [bold]{escape(r.name)}@{r.version}[/]{was}: {r.memories} memories, "
                      f"sha256 {r.sha256[:16]}…, signed by {', '.join(k[:12] for k in r.signed_by)}")
        else:
            out.print(f"{escape(r.name)}@{r.version} is already installed")


def list_packs(as_json: JsonOpt = False) -> None:
    """List installed packs.

    Example:  memos list --json
    """
    mem = _memos()
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
        table.add_row(escape(p.name), p.version, str(p.memories), p.sha256[:16] + "…", escape(p.registry or "(file)"))
    out.print(table)


def remove(name: Annotated[str, typer.Argument(help="Installed pack NS/NAME.")],
           lockfile: Annotated[Path, typer.Option("--lockfile")] = Path(LOCKFILE_NAME),
           as_json: JsonOpt = False) -> None:
    """Uninstall a pack (its memories' history is kept; cached files are freed).

    Example:  memos remove acme/rust-tips
    """
    from ..lockfile import update_lockfile

    mem = _memos()
    try:
        count = mem.remove(name)
    finally:
        mem.close()
    if lockfile.exists():
        update_lockfile(lockfile, remove=(name,))
    if as_json:
        emit_json({"removed": name, "memories": count})
    else:
        out.print(f"Removed {escape(name)} ({count} memories)")


def upgrade(names: Annotated[list[str] | None, typer.Argument(help="Packs to upgrade (default: all).")] = None,
            registry: RegistryOpt = None,
            lockfile: Annotated[Path, typer.Option("--lockfile")] = Path(LOCKFILE_NAME),
            no_lock: Annotated[bool, typer.Option("--no-lock")] = False,
            as_json: JsonOpt = False) -> None:
    """Upgrade installed packs to the highest version (optionally within a range).

    Example:  memos upgrade acme/rust-tips@^1
    """
    mem = _memos(registry=registry)
    try:
        with _progress(not as_json) as progress:
            results = mem.installer.upgrade(names or [], registry=mem.registry, token=mem.token,
                                            progress=progress, lockfile=None if no_lock else lockfile,
                                            actor=mem.principal)
    finally:
        mem.close()
    if as_json:
        emit_json([r.to_dict() for r in results])
        return
    for r in results:
        state = f"{r.previous_version} -> {r.version}" if r.changed else f"{r.version} (up to date)"
        out.print(f"{escape(r.name)}: {state}")


def gc(as_json: JsonOpt = False) -> None:
    """Delete cached blobs nothing refers to any more.

    Example:  memos gc
    """
    mem = _memos()
    try:
        removed = mem.installer.gc()
    finally:
        mem.close()
    if as_json:
        emit_json({"removed": removed})
    else:
        out.print(f"Freed {len(removed)} blob(s)")


# ------------------------------------------------------------------ memories


def add(
    text: Annotated[str, typer.Argument(help="The memory's text.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    priority: Annotated[float, typer.Option(help="0..1")] = 0.5,
    expires: Annotated[str | None, typer.Option("--expires", help="ISO expiry time.")] = None,
    private_to: Annotated[list[str] | None, typer.Option("--private-to", help="Only these principals may read it.")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="key=value metadata (repeatable).")] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a plaintext memory to the local engine.

    Example:  memos add "Deploys happen on Tuesdays" --tag ops --priority 0.8
    """
    access = AccessPolicy("private", tuple(private_to)) if private_to else AccessPolicy()
    mem = _memos(principal)
    try:
        memory = mem.add(text, tags=tuple(tag or ()), priority=priority, expires_at=_when(expires, "--expires"),
                         access=access, metadata=_meta(meta))
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
    else:
        out.print(f"Added {memory.id}")


def _meta(pairs: list[str] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CLIError(f"--meta {pair!r} is not key=value", code="cli.bad_argument")
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


def search(
    query: Annotated[str, typer.Argument(help="What to look for (may be empty with filters).")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Must have this tag (repeatable).")] = None,
    pack: Annotated[str | None, typer.Option("--pack", help="Only memories of this pack.")] = None,
    kind: Annotated[list[str] | None, typer.Option("--type", help="plaintext|activation|parameter")] = None,
    after: Annotated[str | None, typer.Option("--after", help="Created at or after (ISO).")] = None,
    before: Annotated[str | None, typer.Option("--before", help="Created before (ISO).")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="metadata key=value (repeatable).")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Include archived memories.")] = False,
    min_similarity: Annotated[float | None, typer.Option(
        "--min-similarity",
        help="Drop semantic-only matches below this cosine similarity (default: the embedder's "
             "floor, 0.25 for MiniLM; 0 keeps the top k whatever they are).")] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid search (semantic + keyword + filters) of the memories you may read.

    Example:  memos search "borrow checker" --tag rust --json
    """
    filters = Filters(tags=tuple(tag or ()), pack=pack, memory_types=tuple(kind or ()),
                      created_after=_when(after, "--after"), created_before=_when(before, "--before"),
                      metadata=_meta(meta))
    mem = _memos(principal)
    try:
        hits = mem.search(query, k=k, filters=filters, include_archived=archived,
                          min_similarity=min_similarity)
    finally:
        mem.close()
    if as_json:
        emit_json([h.to_dict() for h in hits])
        return
    if not hits:
        out.print("No memories found. Broaden the filters, or pass --min-similarity 0 to see "
                  "the closest memories even when they look unrelated.")
        return
    table = Table("#", "id", "text", "score", "state")
    for i, h in enumerate(hits, 1):
        text = h.memory.text if len(h.memory.text) <= 100 else h.memory.text[:99] + "…"
        table.add_row(str(i), escape(h.memory.id), escape(text), f"{h.score:.4f}", h.memory.state.value)
    out.print(table)


def plan(
    query: Annotated[str, typer.Argument(help="The agent's query.")],
    budget: Annotated[int, typer.Option("--budget", help="Token budget.")] = 512,
    latency_ms: Annotated[float | None, typer.Option("--latency-ms", help="Latency budget in ms.")] = None,
    max_items: Annotated[int, typer.Option("--max-items")] = 20,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Do not count this as a use.")] = False,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the MemScheduler would inject for a query, in which form, and why.

    Example:  memos plan "how do I avoid clones?" --budget 256 --json
    """
    mem = _memos(principal)
    try:
        result = mem.plan(query, Budget(budget, latency_ms / 1000 if latency_ms else None, max_items),
                          dry_run=dry_run)
    finally:
        mem.close()
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(f"Plan for {escape(repr(query))}: {result.tokens_used}/{budget} tokens, {len(result.items)} item(s)")
    for item in result.items:
        out.print(f"  [green]+[/] {escape(item.memory.id)} {escape(f'[{item.form}, {item.tokens} tok]')} "
                  f"{escape(item.reason)}")
    for rej in result.rejected:
        out.print(f"  [red]-[/] {escape(rej.memory_id)} {escape(f'[{rej.code}]')} {escape(rej.reason)}")


def show(
    memory_id: Annotated[str, typer.Argument(help="Memory id.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Show it as it was at this ISO time.")] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one memory, now or as of a past time (Time Machine).

    Example:  memos show acme/tips/notes/m1 --as-of 2026-01-01T12:00:00Z
    """
    mem = _memos(principal)
    try:
        when = _when(as_of, "--as-of")
        memory = mem.as_of(memory_id, when) if when else mem.get(memory_id)
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
        return
    d = memory.to_dict()
    for key in ("id", "state", "version", "text", "tags", "pack", "priority", "access_count",
                "last_accessed_at", "expires_at", "updated_at"):
        out.print(f"[bold]{key}[/]: {escape(str(d[key]))}")


def history(memory_id: Annotated[str, typer.Argument(help="Memory id.")], as_json: JsonOpt = False) -> None:
    """Every version of a memory (who changed what, when).

    Example:  memos history acme/tips/notes/m1
    """
    mem = _memos()
    try:
        versions = mem.history(memory_id)
    finally:
        mem.close()
    if as_json:
        emit_json([v.to_dict() for v in versions])
        return
    table = Table("version", "at", "event", "actor", "state", "text")
    for v in versions:
        text = str(v.snapshot["text"])
        table.add_row(str(v.version), v.at.isoformat(timespec="seconds"), v.event, escape(v.actor or "-"),
                      str(v.snapshot["state"]), escape(text if len(text) < 60 else text[:59] + "…"))
    out.print(table)


def rollback(
    memory_id: Annotated[str, typer.Argument(help="Memory id.")],
    version: Annotated[int, typer.Argument(help="Version to restore.")],
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore an earlier version of a memory (recorded as a new version).

    Example:  memos rollback acme/tips/notes/m1 2
    """
    mem = _memos(principal)
    try:
        memory = mem.rollback(memory_id, version)
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
    else:
        out.print(f"{escape(memory_id)} restored to version {version} as version {memory.version} ({memory.state.value})")


def lifecycle(
    memory_id: Annotated[str, typer.Argument(help="Memory id.")],
    event: Annotated[str, typer.Argument(help="|".join(e.value for e in Event))],
    force: Annotated[bool, typer.Option("--force", help="Skip guards (not the transition table).")] = False,
    into: Annotated[str | None, typer.Option("--into", help="For merge: the surviving memory.")] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a memory through its lifecycle (illegal moves are refused).

    Example:  memos lifecycle acme/tips/notes/m1 archive
    """
    try:
        ev = Event(event)
    except ValueError as exc:
        raise CLIError(f"unknown event {event!r}", code="cli.bad_argument",
                       hint=f"Events: {', '.join(e.value for e in Event)}") from exc
    mem = _memos(principal)
    try:
        memory = mem.transition(memory_id, ev, force=force, merged_into=into)
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
    else:
        out.print(f"{escape(memory_id)} is now {memory.state.value} (version {memory.version})")


def maintain(dry_run: Annotated[bool, typer.Option("--dry-run")] = False, as_json: JsonOpt = False) -> None:
    """Run lifecycle policies now: expire by TTL, archive unused, merge duplicates.

    Example:  memos maintain --dry-run
    """
    mem = _memos()
    try:
        report = mem.maintain(dry_run=dry_run)
    finally:
        mem.close()
    if as_json:
        emit_json(report.to_dict())
    else:
        out.print(f"expired {len(report.expired)}, archived {len(report.archived)}, merged {len(report.merged)}"
                  + (" (dry run)" if dry_run else ""))


def audit(
    actor: Annotated[str | None, typer.Option("--actor", help="Only this principal.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="install|read|search|plan|transition|rollback|...")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Only entries about this memory or pack.")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    verify: Annotated[bool, typer.Option("--verify", help="Check the log's hash chain.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the append-only audit log: installs, who read what, transitions, rollbacks.

    Example:  memos audit --action search --limit 20
    """
    mem = _memos()
    try:
        entries = mem.audit(actor=actor, action=action, target=target, limit=limit)
        broken = mem.engine.store.verify_audit_chain() if verify else None
    finally:
        mem.close()
    if verify and broken is not None:
        raise CLIError(f"the audit log's hash chain breaks at entry {broken}", code="audit.tampered")
    if as_json:
        emit_json([e.to_dict() for e in entries])
        return
    table = Table("seq", "at", "actor", "action", "target", "detail")
    for e in entries:
        detail = _summary(e.detail)
        table.add_row(str(e.seq), e.at.isoformat(timespec="seconds"), escape(e.actor or "-"), e.action,
                      escape(e.target or "-"), escape(detail if len(detail) < 90 else detail[:89] + "…"))
    out.print(table)
    if verify:
        out.print("hash chain intact")


def _summary(detail: Any) -> str:
    """One short line per audit entry: lists are counted, the rest shown as key=value."""
    parts = []
    for key, value in dict(detail).items():
        if isinstance(value, list):
            head = ", ".join(str(v) for v in value[:2])
            value = f"{len(value)}: {head}{', …' if len(value) > 2 else ''}" if value else "0"
        elif isinstance(value, dict):
            value = f"{len(value)} entries"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def register(app: typer.Typer) -> None:
    commands: tuple[tuple[Callable[..., None], str], ...] = (
        (install, "install"), (list_packs, "list"), (remove, "remove"), (upgrade, "upgrade"), (gc, "gc"),
    )
    for command, name in commands:
        app.command(name=name, rich_help_panel="Install")(command)
    engine_commands: tuple[tuple[Callable[..., None], str], ...] = (
        (add, "add"), (search, "search"), (plan, "plan"), (show, "show"), (history, "history"),
        (rollback, "rollback"), (lifecycle, "lifecycle"), (maintain, "maintain"), (audit, "audit"),
    )
    for command, name in engine_commands:
        app.command(name=name, rich_help_panel="Memory engine")(command)


