"""``memos login`` and ``memos publish``: thin commands over :mod:`runtime.publishing`."""

from __future__ import annotations

import getpass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from ..config import load_settings, save_token
from ..publishing import Publisher
from .errors import CLIError
from .output import emit_json, out

__all__ = ["register"]

RegistryOpt = Annotated[
    str | None,
    typer.Option("--registry", help="Registry URL (default: MEMOS_REGISTRY or the saved one)."),
]


def _registry(option: str | None) -> str:
    return (option or load_settings().registry).rstrip("/")


def login(
    registry: RegistryOpt = None,
    token: Annotated[
        str | None, typer.Option("--token", help="An API token (mst_...) created on the registry.")
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Create a token with your password.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password", help="Password (prompted when omitted; avoid on shared machines)."
        ),
    ] = None,
    token_name: Annotated[
        str, typer.Option("--token-name", help="Name of the new token.")
    ] = "memos CLI",  # noqa: S107 - a label, not a password
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Log in to a registry and store the token in $MEMOS_HOME/config.json.

    Example:  memos login --registry http://127.0.0.1:8000 --username demo
    """
    url = _registry(registry)
    settings = load_settings()
    if token is None:
        if username is None:
            raise CLIError(
                "give --token TOKEN or --username NAME", code="cli.usage", hint="memos login --help"
            )
        secret = password if password is not None else getpass.getpass(f"Password for {username}: ")
        with Publisher(url) as client:
            token = client.create_token(username=username, password=secret, name=token_name).token
    with Publisher(url, token=token) as client:
        me = client.whoami()
    save_token(settings, url, token)
    if json_out:
        emit_json({"registry": url, "username": me.username, "namespaces": dict(me.namespaces)})
        return
    names = ", ".join(f"{ns} ({role})" for ns, role in me.namespaces) or "none"
    out.print(f"Logged in to {url} as [bold]{me.username}[/]; namespaces: {names}")


def _minor_units(price: str | None) -> int:
    if price is None:
        return 0
    try:
        amount = Decimal(price)
    except InvalidOperation:
        raise CLIError(f"{price!r} is not a price such as 4.99", code="cli.usage") from None
    if amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise CLIError("a price has at most two decimals and is not negative", code="cli.usage")
    return int(amount * 100)


def publish(
    file: Annotated[
        Path, typer.Argument(help="The signed .memcube to publish.", exists=True, dir_okay=False)
    ],
    registry: RegistryOpt = None,
    private: Annotated[
        bool, typer.Option("--private", help="Visible to namespace members only.")
    ] = False,
    price: Annotated[
        str | None, typer.Option("--price", help="Price, e.g. 4.99 (free if omitted).")
    ] = None,
    currency: Annotated[
        str, typer.Option("--currency", help="ISO 4217 currency of --price.")
    ] = "EUR",
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Publish a signed pack to the registry (its namespace must have your key registered).

    Example:  memos publish tips.memcube --registry http://127.0.0.1:8000
    """
    url = _registry(registry)
    token = load_settings().token_for(url)
    if not token:
        raise CLIError("not logged in to " + url, code="registry.not_authenticated")
    amount = _minor_units(price)
    with Publisher(url, token=token) as client:
        result = client.publish(
            file,
            private=private,
            price_amount_minor=amount,
            price_currency=currency.upper() if amount else "",
        )
    if json_out:
        emit_json(
            {
                "name": result.name,
                "version": result.version,
                "sha256": result.sha256,
                "size": result.size,
                "signed_by": list(result.signed_by),
                "ingest": result.ingest_status,
                "url": result.url,
            }
        )
        return
    out.print(
        f"Published [bold]{result.ref}[/] ({result.size} bytes, sha256 {result.sha256[:12]}…); "
        f"indexing: {result.ingest_status}"
    )


def register(app: typer.Typer) -> None:
    """Add ``login`` and ``publish`` to the memos app."""
    app.command("login", rich_help_panel="Registry")(login)
    app.command("publish", rich_help_panel="Registry")(publish)
