"""Publisher-side commands: init, keygen, pack, sign, verify, validate, inspect.

Each command parses its arguments, calls ``protocol``, and prints. Failures
raise; ``main`` turns them into one-line messages and exit codes.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from protocol import (
    MIP2_VERSION,
    MIP_VERSION,
    Manifest,
    ManifestError,
    Pack,
    PublicKey,
    SigningKey,
    build_manifest,
    format_timestamp,
    pack_directory,
    parse_ref,
    read_pack,
    sign_pack,
    verify_or_raise,
    verify_signatures,
)

from ..config import load_settings
from .errors import CLIError
from .output import emit_json, out

__all__ = ["register"]

PRIVATE_KEY_FILE = "memos-signing.key"
PUBLIC_KEY_FILE = "memos-signing.pub"

EXAMPLE_MEMORIES = [
    {
        "id": "welcome-1",
        "text": "MemCube packs carry plaintext, activation (KV cache) and parameter (LoRA) memory.",
        "tags": ["example"],
    },
    {
        "id": "welcome-2",
        "text": "Every payload in a pack is bound to the signed manifest by its sha256 and size.",
        "tags": ["example"],
    },
]


def _now() -> str:
    return format_timestamp(datetime.now(UTC).replace(microsecond=0))


def _load_signing_key(path: Path) -> SigningKey:
    password = os.environ.get("MEMOS_KEY_PASSWORD")
    return SigningKey.from_pem(path.read_bytes(), password.encode() if password else None)


def _trusted_keys(paths: list[Path]) -> list[PublicKey]:
    keys = [PublicKey.load(p.read_bytes()) for p in paths]
    pinned = load_settings().home / "trusted-keys"
    if not paths and pinned.is_dir():
        keys = [PublicKey.load(p.read_bytes()) for p in sorted(pinned.glob("*.pub"))]
    return keys


def _pack_summary(pack: Pack) -> dict[str, Any]:
    m = pack.manifest
    return {
        "name": m.name,
        "version": m.version,
        "title": m.title,
        "license": m.license,
        "mip_version": m.mip_version,
        "created_at": m.created_at,
        "file_sha256": pack.file_sha256,
        "file_size": pack.file_size,
        "total_payload_bytes": m.total_size,
        "memory_types": m.memory_types,
        "signatures": [s.keyid for s in pack.signatures],
        "cubes": [
            {
                "id": c.id,
                "memory_type": c.memory_type.value,
                "lifecycle": c.lifecycle.value,
                "version": c.version,
                "size": c.size,
                "model": c.model.model_id if c.model else None,
                "payloads": [p.to_dict() for p in c.payloads],
            }
            for c in m.cubes
        ],
    }


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create (must be empty or absent).")],
    name: Annotated[str, typer.Option("--name", help="Pack name: namespace/name.")],
    title: Annotated[str | None, typer.Option(help="Human title (default: the name).")] = None,
    license: Annotated[str, typer.Option("--license", help="SPDX license id.")] = "CC-BY-4.0",
) -> None:
    """Scaffold a pack source: a manifest template and an example memory file.

    Example:  memos init my-pack --name acme/rust-tips
    """
    ref = parse_ref(name)
    if ref.spec.text != "*":
        raise CLIError("--name takes namespace/name without a version", code="cli.bad_argument")
    if directory.exists() and any(directory.iterdir()):
        raise CLIError(f"{directory} is not empty", code="cli.not_empty", hint="Pick a new folder.")
    now = _now()
    manifest = {
        "mip_version": MIP2_VERSION,
        "name": ref.name,
        "version": "0.1.0",
        "title": title or ref.name,
        "description": f"# {title or ref.name}\n\nDescribe what this memory pack knows.",
        "license": license,
        "authors": [{"name": ref.namespace}],
        "created_at": now,
        "keywords": ["example"],
        "cubes": [
            {
                "id": "notes",
                "memory_type": "plaintext",
                "title": "Example notes",
                "payloads": [{"path": "payloads/notes/memories.jsonl"}],
                "created_at": now,
                "lifecycle": "generated",
                "version": 1,
                "provenance": {"source": "hand-written", "author": ref.namespace},
                "governance": {"access": {"visibility": "public"}},
                "behaviour": {"access_count": 0, "priority": 0.5},
            }
        ],
    }
    payload_dir = directory / "payloads" / "notes"
    payload_dir.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    lines = [json.dumps(dict(r, created_at=now), ensure_ascii=False) for r in EXAMPLE_MEMORIES]
    (payload_dir / "memories.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    out.print(f"Created pack source [bold]{directory}[/] for [bold]{ref.name}[/].")
    out.print("Next: edit manifest.json and payloads/, then:")
    out.print(
        f"  memos keygen --out keys && memos pack {directory} --out pack.memcube "
        f"--key keys/{PRIVATE_KEY_FILE}"
    )


def keygen(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the key pair.")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing key pair.")] = False,
) -> None:
    """Create an Ed25519 signing key pair (private .key, public .pub).

    Example:  memos keygen --out ~/.memos-keys
    Set MEMOS_KEY_PASSWORD to encrypt the private key.
    """
    private, public = out_dir / PRIVATE_KEY_FILE, out_dir / PUBLIC_KEY_FILE
    if not force and (private.exists() or public.exists()):
        raise CLIError(
            f"{private} already exists", code="cli.exists", hint="Use --force to replace it."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()
    password = os.environ.get("MEMOS_KEY_PASSWORD")
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.to_pem(password.encode() if password else None))
    public.write_bytes(key.public_key.to_pem())
    out.print(f"Private key: {private} (keep it secret)")
    out.print(f"Public key:  {public}")
    out.print(f"Key id:      {key.keyid}")
    out.print(f"Public text: {key.public_key.to_text()}")
    out.print(f"Register it with a registry: memos keys register {public} --namespace NAMESPACE")


def pack(
    directory: Annotated[Path, typer.Argument(help="Pack source folder (from memos init).")],
    out_file: Annotated[Path, typer.Option("--out", help="The .memcube file to write.")],
    key: Annotated[
        list[Path] | None, typer.Option("--key", help="Private key to sign with (repeatable).")
    ] = None,
    mip: Annotated[
        str | None,
        typer.Option(
            "--mip",
            help="1 writes the MIP 1 form (one tar.gz, for registries and clients "
            "before MIP 2); 2 the MIP 2 form (content-addressed blobs, large text "
            "chunked). Default: the manifest's mip_version (memos init writes 2.0).",
        ),
    ] = None,
) -> None:
    """Build a deterministic .memcube from a pack source, optionally signed.

    Example:  memos pack my-pack --out my-pack.memcube --key keys/memos-signing.key
    """
    keys = [_load_signing_key(p) for p in key or []]
    versions = {"1": MIP_VERSION, "2": MIP2_VERSION}
    versions |= {v: v for v in (MIP_VERSION, MIP2_VERSION)}
    if mip is not None and mip not in versions:
        raise typer.BadParameter("--mip takes 1 or 2")
    result = pack_directory(
        directory, out_file, keys=keys, mip_version=versions[mip] if mip else None
    )
    out.print(
        f"Packed [bold]{result.manifest.ref}[/] -> {out_file} "
        f"({result.file_size} bytes, sha256 {result.file_sha256[:16]}…, "
        f"{len(result.signatures)} signature(s))"
    )


def sign(
    file: Annotated[Path, typer.Argument(help="The .memcube to sign (rewritten in place).")],
    key: Annotated[list[Path], typer.Option("--key", help="Private key (repeatable).")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of in place.")
    ] = None,
) -> None:
    """Add signatures to a pack; existing signatures are kept.

    Example:  memos sign my-pack.memcube --key keys/memos-signing.key
    """
    keys = [_load_signing_key(p) for p in key]
    result = sign_pack(file, keys, out=out_file)
    signers = ", ".join(s.keyid[:16] for s in result.signatures)
    out.print(f"Signed {result.manifest.ref}: signatures by {signers}")


def verify(
    file: Annotated[
        Path | None,
        typer.Argument(help="The .memcube to verify (with --installed: an installed NS/NAME)."),
    ] = None,
    trusted_key: Annotated[
        list[Path] | None, typer.Option("--trusted-key", help="Publisher public key (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    installed: Annotated[
        bool, typer.Option("--installed", help="Re-hash the installed packs' cached blobs.")
    ] = False,
) -> None:
    """Check a pack's integrity, content and signatures against trusted keys.

    Example:  memos verify my-pack.memcube --trusted-key keys/memos-signing.pub
    Example:  memos verify --installed [acme/tips]   (re-hash cached blobs; exit 1 if any is bad)
    Without --trusted-key, keys pinned in $MEMOS_HOME/trusted-keys/*.pub are used.
    """
    if installed:
        from .install_cmds import verify_installed

        verify_installed([str(file)] if file is not None else [], as_json)
        return
    if file is None:
        raise CLIError("name a .memcube file (or pass --installed)", code="cli.bad_argument")
    result = read_pack(file)
    keys = _trusted_keys(trusted_key or [])
    if not keys:
        raise CLIError(
            "integrity is fine, but no trusted key was given to check the signatures",
            code="cli.no_trusted_keys",
        )
    verdict = verify_signatures(result.manifest_bytes, result.signatures, keys)
    if as_json:
        emit_json(
            {
                "ok": verdict.ok,
                "pack": result.manifest.ref,
                "valid": list(verdict.valid),
                "invalid": list(verdict.invalid),
                "untrusted": list(verdict.untrusted),
            }
        )
    verify_or_raise(result.manifest_bytes, result.signatures, keys)
    if not as_json:
        out.print(f"[green]OK[/] {result.manifest.ref}: every payload matches its digest;")
        for keyid in verdict.valid:
            out.print(f"  signed by trusted key {keyid}")
        for keyid in verdict.untrusted:
            out.print(f"  also signed by unknown key {keyid} (not trusted)")


def _is_source_manifest(path: Path) -> bool:
    """``manifest.json`` next to a ``payloads/`` folder: the template of a pack source."""
    return path.name == "manifest.json" and (path.parent / "payloads").is_dir()


def validate(
    target: Annotated[
        Path, typer.Argument(help="A .memcube, a manifest.json, or a pack source folder.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Validate a pack, a manifest or a pack source, listing every problem.

    Example:  memos validate my-pack/manifest.json
    """
    try:
        if target.is_dir() or _is_source_manifest(target):
            # the manifest.json of a pack source is a template: sizes and digests come
            # from its payload files, so it is checked as the source it belongs to
            folder = target if target.is_dir() else target.parent
            manifest, _files = build_manifest(folder)
            what = f"pack source {manifest.ref}"
        elif target.suffix == ".json":
            manifest = Manifest.from_bytes(target.read_bytes())
            what = f"manifest {manifest.ref}"
        else:
            manifest = read_pack(target).manifest
            what = f"pack {manifest.ref}"
    except ManifestError as exc:
        if as_json:
            emit_json({"ok": False, "error": exc.to_dict()})
        else:
            for violation in exc.violations:
                out.print(f"  {violation.pointer or '/'}: {violation.message}")
        raise
    if as_json:
        emit_json({"ok": True, "name": manifest.name, "version": manifest.version})
    else:
        out.print(f"[green]valid[/] {what}")


def inspect(
    file: Annotated[Path, typer.Argument(help="The .memcube to inspect.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show what a pack holds: metadata, MemCubes, payloads and signers.

    Example:  memos inspect my-pack.memcube --json
    """
    result = read_pack(file)
    summary = _pack_summary(result)
    if as_json:
        emit_json(summary)
        return
    m = result.manifest
    out.print(f"[bold]{m.ref}[/]  {m.title}")
    out.print(f"license {m.license} · MIP {m.mip_version} · created {m.created_at}")
    out.print(f"file sha256 {result.file_sha256} · {result.file_size} bytes")
    table = Table("cube", "type", "lifecycle", "v", "bytes", "model", "payloads")
    for cube in summary["cubes"]:
        table.add_row(
            cube["id"],
            cube["memory_type"],
            cube["lifecycle"],
            str(cube["version"]),
            str(cube["size"]),
            cube["model"] or "-",
            "\n".join(p["path"] for p in cube["payloads"]),
        )
    out.print(table)
    if result.signatures:
        for sig in result.signatures:
            out.print(f"signed by key {sig.keyid}")
    else:
        out.print("[yellow]unsigned[/]")


def register(app: typer.Typer) -> None:
    for command in (init, keygen, pack, sign, verify, validate, inspect):
        app.command(rich_help_panel="Packs")(command)
