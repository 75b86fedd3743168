"""``memos log verify``: replay the registry's transparency log and report unexpected key events.

Thin: parse, call :class:`runtime.transparency.LogVerifier`, print. Exit 0 when
the log is consistent with what this ``MEMOS_HOME`` saw and no key event of a
followed namespace is new; 1 when there are new key events (listed; ``--ack``
records them as expected) or the log refuses (``log.*``, printed by the error table).
Not here: the checks (:mod:`runtime.transparency`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from protocol import PublicKey

from ..client import RegistryClient
from ..config import load_settings
from ..transparency import HttpLog, LogEntryView, LogVerifier
from ..trust_index import TrustIndex
from .common import JsonOpt, RegistryOpt, open_memos
from .output import emit_json, out

__all__ = ["register"]

log_app = typer.Typer(
    help="The registry's transparency log: what it published, and every key change.",
    epilog="Example:  memos log verify --namespace acme",
    no_args_is_help=True,
)


def _followed(namespaces: list[str]) -> list[str]:
    if namespaces:
        return sorted(set(namespaces))
    mem = open_memos()
    try:
        return sorted({p.name.split("/", 1)[0] for p in mem.installed()})
    finally:
        mem.close()


@log_app.command("verify")
def verify(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace", "-n", help="A namespace to follow (default: installed packs')."
        ),
    ] = None,
    ack: Annotated[
        bool, typer.Option("--ack", help="Record the reported key events as expected.")
    ] = False,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay the log, check it against the last tree head seen, list unexpected key events.

    Example:  memos log verify --namespace acme --ack
    """
    settings = load_settings()
    url = (registry or settings.registry).rstrip("/")
    followed = _followed(list(namespace or []))
    with RegistryClient(url, token=settings.token_for(url)) as client:
        verifier = LogVerifier(
            settings.home,
            url,
            HttpLog(client),
            root_keys=_root_log_keys(settings.home, url, client),
        )
        head, entries = verifier.replay()
        unexpected = verifier.unexpected_key_events(entries, followed)
        if ack:
            verifier.acknowledge(e.index for e in unexpected)
    if as_json:
        emit_json(
            {
                "registry": url,
                "size": head.size,
                "root_hash": head.root_hash.hex(),
                "namespaces": followed,
                "unexpected": [e.data for e in unexpected],
                "acknowledged": ack,
            }
        )
    else:
        out.print(
            f"log of {escape(url)}: {head.size} entries, root {head.root_hash.hex()[:16]}…, "
            "consistent with every tree head seen before"
        )
        for e in unexpected:
            out.print(_describe(e))
        if unexpected and not ack:
            out.print("not expected? investigate; expected: run again with --ack")
    if unexpected and not ack:
        raise typer.Exit(1)


def _root_log_keys(home: Path, url: str, client: RegistryClient) -> tuple[PublicKey, ...] | None:
    """The log keys the registry's pinned TUF root names (refreshed first), if it is pinned."""
    index = TrustIndex(home, url, client)
    with index.locked():
        if index.pinned() is None:
            return None
        index.refresh()
        return index.log_keys()


def _describe(e: LogEntryView) -> str:
    keyid = str(e.data.get("keyid", ""))[:16]
    key = f", key {keyid}" if keyid else ""
    if e.kind == "namespace.transfer":
        key = f", owner {e.data.get('from', '')} -> {e.data.get('to', '')}"
    at = str(e.data.get("at", ""))
    where = f"in {escape(e.namespace)} at {escape(at)}"
    return f"[yellow]{escape(e.kind)}[/] {where} (entry {e.index}{key})"


def register(app: typer.Typer) -> None:
    app.add_typer(log_app, name="log", rich_help_panel="Registry")
