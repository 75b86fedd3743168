"""``memos registry add`` and the key statements: pin a registry, endorse or compromise a key.

Thin commands over :mod:`runtime.trust_index.statements`. Not here: verifying
the index (:mod:`runtime.trust_index`), the other registry commands
(:mod:`.registry_cmds`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from protocol import PublicKey, SigningKey

from ..client import RegistryClient
from ..config import load_settings
from ..trust_index.statements import declare_compromised, endorse, pin_registry
from .common import registry_token as _token
from .common import registry_url as _registry
from .errors import CLIError
from .output import emit_json, out

__all__ = ["pin_on_login", "register"]

registry_app = typer.Typer(help="Registries this machine trusts (their pinned TUF root).",
                           no_args_is_help=True)  # fmt: skip


@registry_app.command("add")
def registry_add(
    url: Annotated[str, typer.Argument(help="The registry's URL.")],
    root: Annotated[
        Path | None,
        typer.Option("--root", help="The registry's root.json, obtained out of band.",
                     exists=True, dir_okay=False),
    ] = None,
    root_sha256: Annotated[
        str | None, typer.Option("--root-sha256", help="The root's fingerprint (sha256 hex).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Pin a registry's TUF root (printed; first use pins what it serves, like SSH).

    Example:  memos registry add http://127.0.0.1:8000 --root-sha256 3f1c...9a
    """
    url = url.rstrip("/")
    with RegistryClient(url) as client:
        pinned = pin_registry(
            load_settings().home, url, client,
            root=root.read_bytes() if root is not None else None, root_sha256=root_sha256,
        )  # fmt: skip
    assert pinned is not None
    if json_out:
        emit_json({"registry": url, "root_sha256": pinned.fingerprint,
                   "first_use": pinned.first_use})  # fmt: skip
        return
    out.print(f"Pinned {escape(url)}: root sha256 [bold]{pinned.fingerprint}[/]")
    if pinned.first_use:
        out.print("Pinned on first use: compare this fingerprint with the one the registry's "
                  "operator publishes.")  # fmt: skip


def pin_on_login(url: str, client: RegistryClient) -> str | None:
    """``memos login``'s pin: the same as ``registry add`` (None: the registry has no index)."""
    pinned = pin_registry(load_settings().home, url, client, required=False)
    return None if pinned is None else pinned.fingerprint




def _signing_key(path: Path) -> SigningKey:
    data = path.read_bytes()
    if b"PRIVATE KEY" not in data:
        raise CLIError(f"{path} is not a private key file", code="cli.usage")
    return SigningKey.from_pem(data)


def keys_endorse(
    pubfile: Annotated[Path, typer.Argument(help="The new key's .pub file.", exists=True)],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="The namespace.")],
    by: Annotated[Path, typer.Option("--by", help="An older key of the namespace (private).",
                                     exists=True)],
    registry: Annotated[str | None, typer.Option("--registry", help="Registry URL.")] = None,
) -> None:
    """Endorse a newly registered key with an older one, so clients that pinned the older
    key accept the new one.

    Example:  memos keys endorse new.pub --namespace acme --by keys/old.key
    """
    url = _registry(registry)
    new_key = PublicKey.load(pubfile.read_bytes())
    with RegistryClient(url, token=_token(url)) as client:
        endorse(client, namespace, new_key, _signing_key(by))
    out.print(f"Key {new_key.keyid} of {escape(namespace)} endorsed")


def keys_compromised(
    keyid: Annotated[str, typer.Argument(help="The key id (see memos keys list).")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="The namespace.")],
    since: Annotated[datetime, typer.Option("--since", help="From when its signatures are "
                                            "not yours (ISO 8601).")],
    registry: Annotated[str | None, typer.Option("--registry", help="Registry URL.")] = None,
) -> None:
    """Declare a key compromised since a time: versions it signed from then on are refused,
    older ones stay installable (a plain revoke refuses only versions published after it).

    Example:  memos keys compromised 9f2c...e1 --namespace acme --since 2026-05-01T00:00:00Z
    """
    url = _registry(registry)
    with RegistryClient(url, token=_token(url)) as client:
        declare_compromised(client, namespace, keyid, since)
    out.print(f"Key {keyid} of {escape(namespace)} declared compromised since {since.isoformat()}")


def register(app: typer.Typer, keys_app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry", rich_help_panel="Registry")
    keys_app.command("endorse")(keys_endorse)
    keys_app.command("compromised")(keys_compromised)
