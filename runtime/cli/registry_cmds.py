"""``memos login``, ``memos publish`` and ``memos keys``: thin commands over the registry client.

They parse options, call :class:`runtime.client.RegistryClient` (and, for ``publish``,
:func:`runtime.blob_publish.publish_blobs`: only the blobs the registry lacks), print.
Not here: HTTP or the wire format (:mod:`runtime.client`, :mod:`runtime._wire`).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn
from rich.progress import Progress as RichProgress

from protocol import PublicKey, container_major

from ..blob_publish import (
    BlobPublishResult,
    BlobsUnsupported,
    Progress,
    check_blobs,
    publish_blobs,
)
from ..client import NamespaceKey, PublishCheck, PublishResult, RegistryClient
from ..config import load_settings, save_token
from . import trust_cmds
from .common import registry_token as _token
from .common import registry_url as _registry
from .errors import CLIError
from .output import emit_json, err, out
from .trust_cmds import pin_on_login

__all__ = ["register"]

RegistryOpt = Annotated[
    str | None,
    typer.Option("--registry", help="Registry URL (default: MEMOS_REGISTRY or the saved one)."),
]


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", "-n", help="The namespace (your username or an organization).")
]




CLI_SCOPES = ("read", "publish:*", "admin:*")


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
    expires_at: str | None = None
    if token is None:
        if username is None:
            raise CLIError(
                "give --token TOKEN or --username NAME", code="cli.usage", hint="memos login --help"
            )
        secret = password if password is not None else getpass.getpass(f"Password for {username}: ")
        with RegistryClient(url) as client:
            # The person at the keyboard proved the password: the CLI token may also manage
            # keys and members (admin:*); tokens for CI are made narrower on the web page.
            created = client.create_token(
                username=username, password=secret, name=token_name, scopes=CLI_SCOPES
            )
        token, expires_at = created.token, created.expires_at
    with RegistryClient(url, token=token) as client:
        me = client.whoami()
        fingerprint = pin_on_login(url, client)  # the same pin as memos registry add
    save_token(settings, url, token)
    if json_out:
        emit_json({"registry": url, "username": me.username, "namespaces": dict(me.namespaces),
                   "token_expires_at": expires_at, "root_sha256": fingerprint})  # fmt: skip
        return
    names = ", ".join(f"{ns} ({role})" for ns, role in me.namespaces) or "none"
    out.print(f"Logged in to {url} as [bold]{me.username}[/]; namespaces: {names}")
    if fingerprint:
        out.print(f"Registry root (TUF) pinned: sha256 {fingerprint}")
    if expires_at:
        out.print(f"The new token expires at {expires_at}; run memos login again then.")


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


@contextmanager
def _bar(label: str, enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar over the bytes to send (on stderr), or nothing."""
    if not enabled:
        yield None
        return
    with RichProgress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=err, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task(escape(label), total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _send(
    client: RegistryClient,
    file: Path,
    *,
    whole: bool,
    progress: Progress | None,
    **options: Any,
) -> tuple[PublishResult, BlobPublishResult | None]:
    """Blob by blob when the registry can (an older one: the whole pack); ``whole`` forces it.

    A MIP 1 pack (a gzip file) is always sent whole: published by manifest it
    would have no ``.memcube`` on the registry, which clients before MIP 2
    need to install it.
    """
    if not whole and not _is_mip1_file(file):
        try:
            sent = publish_blobs(client, file, progress=progress, **options)
            return sent.published, sent
        except BlobsUnsupported:
            err.print("[dim]the registry takes whole packs only; uploading the file…[/]")
    return client.publish(file, progress=progress, **options), None


def _is_mip1_file(file: Path) -> bool:
    with open(file, "rb") as fh:
        return container_major(fh.read(2)) == 1


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def _print_findings(result: PublishResult | PublishCheck) -> None:
    """The registry's publish-time scan: what to check in the memories (shown on the page too)."""
    if not result.findings:
        return
    err.print(f"[yellow]The registry's scan found {len(result.findings)} thing(s) to check:[/]")
    for f in result.findings[:50]:
        line = f"  {f.kind:<16} {f.cube_id}/{f.record_id}: {f.rule} {f.excerpt}"
        err.print(escape(line.rstrip()))
    if len(result.findings) > 50:
        err.print(f"  … {len(result.findings) - 50} more on the pack page")


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
    whole: Annotated[
        bool,
        typer.Option(
            "--whole", help="Upload the whole .memcube file, not only the blobs the registry lacks."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Upload the missing blobs and run every check and the registry's scan; "
            "publish nothing (the real publish then sends no blob again).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Publish a signed pack to the registry (its namespace must have your key registered).

    Only the blobs the registry does not have yet are uploaded, each resumably: run the same
    command again after an interruption and every blob continues where it stopped.
    --dry-run shows what the registry's scan finds (secrets, personal data, prompt
    injection) before anything is public.

    Example:  memos publish tips.memcube --dry-run && memos publish tips.memcube
    """
    url = _registry(registry)
    token = _token(url)
    amount = _minor_units(price)
    if dry_run:
        _dry_run(url, token, file, whole=whole, quiet=quiet or json_out, json_out=json_out)
        return
    with (
        RegistryClient(url, token=token) as client,
        _bar(f"publish {file.name}", not quiet and not json_out) as progress,
    ):
        result, blobs = _send(
            client, file, whole=whole, progress=progress, private=private,
            price_amount_minor=amount, price_currency=currency.upper() if amount else "",
        )  # fmt: skip
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
                "findings": [f.__dict__ for f in result.findings],
                "mode": "whole" if blobs is None else "blobs",
                **({"blobs": blobs.to_dict()} if blobs is not None else {}),
            }
        )
        return
    _print_findings(result)
    if blobs is None:
        out.print(
            f"Published [bold]{result.ref}[/] ({result.size} bytes, sha256 "
            f"{result.sha256[:12]}…); indexing: {result.ingest_status}"
        )
        return
    out.print(
        f"Published [bold]{result.ref}[/]: sent {blobs.blobs_sent} of {blobs.blobs_total} blobs "
        f"({_mb(blobs.bytes_sent)} of {_mb(blobs.bytes_total)}), {blobs.blobs_present} already "
        f"on the registry; indexing: {result.ingest_status}"
    )


def _dry_run(url: str, token: str, file: Path, *, whole: bool, quiet: bool, json_out: bool) -> None:
    if whole or _is_mip1_file(file):
        raise CLIError(
            "--dry-run checks a MIP 2 pack blob by blob; this one is sent whole",
            code="cli.bad_argument",
            hint="Write the pack as MIP 2 (memos pack, the default) or memos migrate it.",
        )
    with (
        RegistryClient(url, token=token) as client,
        _bar(f"check {file.name}", not quiet) as progress,
    ):
        checked, sent = check_blobs(client, file, progress=progress)
    if json_out:
        emit_json({
            "name": checked.name, "version": checked.version, "published": False,
            "memories_scanned": checked.memories_scanned,
            "findings": [f.__dict__ for f in checked.findings], "blobs": sent.to_dict(),
        })  # fmt: skip
        return
    _print_findings(checked)
    verdict = "nothing found" if not checked.findings else f"{len(checked.findings)} finding(s)"
    out.print(
        f"Checked [bold]{checked.ref}[/]: the registry would publish it ({verdict} in "
        f"{checked.memories_scanned} memories); sent {sent.blobs_sent} of {sent.blobs_total} "
        f"blobs ({_mb(sent.bytes_sent)}). Nothing was published."
    )


# ---------------------------------------------------------------- memos keys

keys_app = typer.Typer(
    help="A namespace's signing keys on the registry: the keys packs must be signed with.",
    epilog="Example:  memos keys register keys/memos-signing.pub --namespace acme",
    no_args_is_help=True,
)


def _read_public_key(path: Path) -> PublicKey:
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        raise CLIError(
            f"{path} is a private key; it never leaves this machine",
            code="keys.private_key",
        )
    return PublicKey.load(data)  # signature.bad_key (with its hint) when it is not a key


def _key_json(key: NamespaceKey) -> dict[str, object]:
    return {
        "keyid": key.keyid,
        "public_key": key.public_key.to_text(),
        "label": key.label,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "revocation_reason": key.revocation_reason,
    }


@keys_app.command("register")
def keys_register(
    pubfile: Annotated[
        Path,
        typer.Argument(
            help="The public key file (.pub, from memos keygen).", exists=True, dir_okay=False
        ),
    ],
    namespace: NamespaceOpt,
    label: Annotated[
        str, typer.Option("--label", help="A note to tell keys apart, e.g. 'laptop 2026'.")
    ] = "",
    registry: RegistryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a public key for a namespace; packs signed with its private key are accepted.

    Example:  memos keys register keys/memos-signing.pub --namespace acme --label laptop
    """
    key = _read_public_key(pubfile)
    url = _registry(registry)
    with RegistryClient(url, token=_token(url)) as client:
        result = client.register_key(namespace, key, label=label)
    if json_out:
        emit_json(_key_json(result))
        return
    out.print(f"Registered key {result.keyid} for namespace [bold]{escape(namespace)}[/]")


@keys_app.command("list")
def keys_list(
    namespace: NamespaceOpt,
    registry: RegistryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List a namespace's signing keys, revoked ones included.

    Example:  memos keys list --namespace acme --json
    """
    url = _registry(registry)
    with RegistryClient(url, token=load_settings().token_for(url)) as client:
        keys = client.list_keys(namespace)
    if json_out:
        emit_json([_key_json(k) for k in keys])
        return
    if not keys:
        out.print(
            f"Namespace {escape(namespace)} has no signing keys (memos keys register PUBFILE)."
        )
        return
    for k in keys:
        if k.revoked_at is None:
            state = "[green]active[/]"
        else:
            reason = f": {escape(k.revocation_reason)}" if k.revocation_reason else ""
            state = f"[red]revoked {escape(k.revoked_at)}{reason}[/]"
        label = f"  {escape(k.label)}" if k.label else ""
        out.print(f"{k.keyid}  {state}{label}")


@keys_app.command("revoke")
def keys_revoke(
    keyid: Annotated[str, typer.Argument(help="The key id (sha256 hex, see memos keys list).")],
    namespace: NamespaceOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why, shown to users.")] = "",
    registry: RegistryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Retire a signing key: versions published after this signed only by it are refused.

    Versions it signed before stay installable; if the key leaked, use `memos keys compromised`.

    Example:  memos keys revoke 9f2c...e1 --namespace acme --reason "rotated"
    """
    url = _registry(registry)
    with RegistryClient(url, token=_token(url)) as client:
        result = client.revoke_key(namespace, keyid, reason=reason)
    if json_out:
        emit_json(_key_json(result))
        return
    out.print(
        f"Revoked key {result.keyid} of namespace [bold]{escape(namespace)}[/] "
        f"({escape(result.revoked_at or '')})"
    )


def register(app: typer.Typer) -> None:
    """Add ``login``, ``publish`` and ``keys`` to the memos app."""
    app.command("login", rich_help_panel="Registry")(login)
    app.command("publish", rich_help_panel="Registry")(publish)
    app.add_typer(keys_app, name="keys", rich_help_panel="Registry")
    trust_cmds.register(app, keys_app)
