"""Memory-engine commands of the runtime: add, search, plan, show, history, rollback,
lifecycle, maintain, audit.

Thin: parse, call :class:`runtime.MemOS`, print (rich for people, ``--json``
for machines). Errors propagate to ``main``'s table. Not here: installing
packs (:mod:`.install_cmds`), models and generation (:mod:`.model_cmds`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from protocol import AccessPolicy

from ..engine.lifecycle import Event
from ..engine.scheduler import Budget
from ..engine.types import Filters
from .common import AsOpt, JsonOpt, open_memos
from .edit_cmds import edit
from .errors import CLIError
from .output import emit_json, out

__all__ = ["register"]

TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")]
MetaOpt = Annotated[
    list[str] | None, typer.Option("--meta", help="key=value metadata (repeatable).")
]
MemoryArg = Annotated[str, typer.Argument(help="Memory id.")]


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CLIError(
            f"{option}: {text!r} is not an ISO date or time", code="cli.bad_argument"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _at(when: datetime) -> str:
    """A time for an 80-column table: UTC, to the second, 20 characters."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _narrow_table(*columns: str, fixed: tuple[str, ...]) -> Table:
    """A table that fits 80 columns: ``fixed`` columns never wrap, the others fold."""
    table = Table(pad_edge=False, box=None, header_style="bold")
    for name in columns:
        if name in fixed:
            table.add_column(name, no_wrap=True)
        else:
            table.add_column(name, overflow="fold")
    return table


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


def add(
    text: Annotated[str, typer.Argument(help="The memory's text.")],
    tag: TagOpt = None,
    priority: Annotated[float, typer.Option(help="0..1")] = 0.5,
    expires: Annotated[str | None, typer.Option("--expires", help="ISO expiry time.")] = None,
    private_to: Annotated[
        list[str] | None,
        typer.Option("--private-to", help="Only these principals may read it."),
    ] = None,
    meta: MetaOpt = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a plaintext memory to the local engine.

    Example:  memos add "Deploys happen on Tuesdays" --tag ops --priority 0.8
    """
    access = AccessPolicy("private", tuple(private_to)) if private_to else AccessPolicy()
    mem = open_memos(principal)
    try:
        memory = mem.add(
            text,
            tags=tuple(tag or ()),
            priority=priority,
            expires_at=_when(expires, "--expires"),
            access=access,
            metadata=_meta(meta),
        )
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
    else:
        out.print(f"Added {memory.id}")


def search(
    query: Annotated[str, typer.Argument(help="What to look for (may be empty with filters).")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Must have this tag (repeatable).")
    ] = None,
    pack: Annotated[str | None, typer.Option("--pack", help="Only memories of this pack.")] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--type", help="plaintext|activation|parameter")
    ] = None,
    after: Annotated[str | None, typer.Option("--after", help="Created at or after (ISO).")] = None,
    before: Annotated[str | None, typer.Option("--before", help="Created before (ISO).")] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="metadata key=value (repeatable).")
    ] = None,
    archived: Annotated[
        bool, typer.Option("--archived", help="Include archived memories.")
    ] = False,
    min_similarity: Annotated[
        float | None,
        typer.Option(
            "--min-similarity",
            help="Drop semantic-only matches below this cosine similarity (default: the embedder's "
            "floor, 0.25 for MiniLM; 0 keeps the top k whatever they are).",
        ),
    ] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid search (semantic + keyword + filters) of the memories you may read.

    Example:  memos search "borrow checker" --tag rust --json
    """
    filters = Filters(
        tags=tuple(tag or ()),
        pack=pack,
        memory_types=tuple(kind or ()),
        created_after=_when(after, "--after"),
        created_before=_when(before, "--before"),
        metadata=_meta(meta),
    )
    mem = open_memos(principal)
    try:
        hits = mem.search(
            query, k=k, filters=filters, include_archived=archived, min_similarity=min_similarity
        )
    finally:
        mem.close()
    if as_json:
        emit_json([h.to_dict() for h in hits])
        return
    if not hits:
        out.print(
            "No memories found. Broaden the filters, or pass --min-similarity 0 to see "
            "the closest memories even when they look unrelated."
        )
        return
    table = Table("#", "id", "text", "score", "state")
    table.columns[1].overflow = "fold"  # the whole id: memos show/history take it
    for i, h in enumerate(hits, 1):
        text = h.memory.text if len(h.memory.text) <= 100 else h.memory.text[:99] + "…"
        table.add_row(
            str(i), escape(h.memory.id), escape(text), f"{h.score:.4f}", h.memory.state.value
        )
    out.print(table)


def plan(
    query: Annotated[str, typer.Argument(help="The agent's query.")],
    budget: Annotated[int, typer.Option("--budget", help="Token budget.")] = 512,
    latency_ms: Annotated[
        float | None, typer.Option("--latency-ms", help="Latency budget in ms.")
    ] = None,
    max_items: Annotated[int, typer.Option("--max-items")] = 20,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Do not count this as a use.")] = False,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the MemScheduler would inject for a query, in which form, and why.

    Example:  memos plan "how do I avoid clones?" --budget 256 --json
    """
    limits = Budget(budget, latency_ms / 1000 if latency_ms else None, max_items)
    mem = open_memos(principal)
    try:
        result = mem.plan(query, limits, dry_run=dry_run)
    finally:
        mem.close()
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(
        f"Plan for {escape(repr(query))}: {result.tokens_used}/{budget} tokens, "
        f"{len(result.items)} item(s)"
    )
    for item in result.items:
        out.print(
            f"  [green]+[/] {escape(item.memory.id)} "
            f"{escape(f'[{item.form}, {item.tokens} tok]')} {escape(item.reason)}"
        )
    for rej in result.rejected:
        out.print(
            f"  [red]-[/] {escape(rej.memory_id)} {escape(f'[{rej.code}]')} {escape(rej.reason)}"
        )


def show(
    memory_id: MemoryArg,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Show it as it was at this ISO time.")
    ] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one memory, now or as of a past time (Time Machine).

    Example:  memos show acme/tips/notes/m1 --as-of 2026-01-01T12:00:00Z
    """
    mem = open_memos(principal)
    try:
        when = _when(as_of, "--as-of")
        memory = mem.as_of(memory_id, when) if when else mem.get(memory_id)
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
        return
    d = memory.to_dict()
    for key in (
        "id",
        "state",
        "version",
        "text",
        "tags",
        "pack",
        "priority",
        "access_count",
        "last_accessed_at",
        "expires_at",
        "updated_at",
    ):
        out.print(f"[bold]{key}[/]: {escape(str(d[key]))}")


def history(memory_id: MemoryArg, principal: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Every version of a memory (who changed what, when), if you may read it.

    Example:  memos history acme/tips/notes/m1 --as agent-7
    """
    mem = open_memos(principal)
    try:
        versions = mem.history(memory_id)
    finally:
        mem.close()
    if as_json:
        emit_json([v.to_dict() for v in versions])
        return
    table = _narrow_table(
        "version",
        "at (UTC)",
        "event",
        "actor",
        "state",
        "text",
        fixed=("version", "at (UTC)", "event", "state"),
    )
    for v in versions:
        text = str(v.snapshot["text"])
        table.add_row(
            str(v.version),
            _at(v.at),
            v.event,
            escape(v.actor or "-"),
            str(v.snapshot["state"]),
            escape(text if len(text) < 60 else text[:59] + "…"),
        )
    out.print(table)


def rollback(
    memory_id: MemoryArg,
    version: Annotated[int, typer.Argument(help="Version to restore.")],
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore an earlier version of a memory (recorded as one new version; needs write access).

    Example:  memos rollback acme/tips/notes/m1 2 --as agent-7
    """
    mem = open_memos(principal)
    try:
        memory = mem.rollback(memory_id, version)
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
    else:
        out.print(
            f"{escape(memory_id)} restored to version {version} as version "
            f"{memory.version} ({memory.state.value})"
        )


def lifecycle(
    memory_id: MemoryArg,
    event: Annotated[str, typer.Argument(help="|".join(e.value for e in Event))],
    force: Annotated[
        bool, typer.Option("--force", help="Skip guards (not the transition table).")
    ] = False,
    into: Annotated[
        str | None, typer.Option("--into", help="For merge: the surviving memory.")
    ] = None,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a memory through its lifecycle (illegal moves are refused).

    Example:  memos lifecycle acme/tips/notes/m1 archive
    """
    try:
        ev = Event(event)
    except ValueError as exc:
        raise CLIError(
            f"unknown event {event!r}",
            code="cli.bad_argument",
            hint=f"Events: {', '.join(e.value for e in Event)}",
        ) from exc
    mem = open_memos(principal)
    try:
        memory = mem.transition(memory_id, ev, force=force, merged_into=into)
    finally:
        mem.close()
    if as_json:
        emit_json(memory.to_dict())
    else:
        out.print(f"{escape(memory_id)} is now {memory.state.value} (version {memory.version})")


def maintain(
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run lifecycle policies now: expire by TTL, archive unused, merge duplicates.

    Example:  memos maintain --dry-run --as ops
    """
    mem = open_memos(principal)
    try:
        report = mem.maintain(dry_run=dry_run)
    finally:
        mem.close()
    if as_json:
        emit_json(report.to_dict())
    else:
        out.print(
            f"expired {len(report.expired)}, archived {len(report.archived)}, "
            f"merged {len(report.merged)}" + (" (dry run)" if dry_run else "")
        )


def audit(
    actor: Annotated[str | None, typer.Option("--actor", help="Only this principal.")] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="install|read|search|plan|transition|rollback|..."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Only entries about this memory or pack.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    verify: Annotated[bool, typer.Option("--verify", help="Check the log's hash chain.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the append-only audit log: installs, who read what, transitions, rollbacks.

    Example:  memos audit --action search --limit 20
    """
    mem = open_memos()
    try:
        entries = mem.audit(actor=actor, action=action, target=target, limit=limit)
        broken = mem.verify_audit() if verify else None
    finally:
        mem.close()
    if verify and broken is not None:
        raise CLIError(
            f"the audit log's hash chain breaks at entry {broken}", code="audit.tampered"
        )
    if as_json:
        emit_json([e.to_dict() for e in entries])
        return
    table = _narrow_table(
        "seq",
        "at (UTC)",
        "actor",
        "action",
        "target",
        "detail",
        fixed=("seq", "at (UTC)", "action"),
    )
    for e in entries:
        detail = _summary(e.detail)
        table.add_row(
            str(e.seq),
            _at(e.at),
            escape(e.actor or "-"),
            e.action,
            escape(e.target or "-"),
            escape(detail if len(detail) < 90 else detail[:89] + "…"),
        )
    out.print(table)
    if verify:
        out.print("hash chain intact")


def _summary(detail: Mapping[str, Any]) -> str:
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
    """Add the memory-engine commands to the memos app (help panel "Memory engine")."""
    commands: tuple[tuple[Callable[..., None], str], ...] = (
        (add, "add"), (search, "search"), (plan, "plan"), (show, "show"), (history, "history"),
        (rollback, "rollback"), (edit, "edit"), (lifecycle, "lifecycle"), (maintain, "maintain"),
        (audit, "audit"),
    )  # fmt: skip
    for command, name in commands:
        app.command(name=name, rich_help_panel="Memory engine")(command)
