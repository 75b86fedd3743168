"""Demo data for ``manage.py memstore_up``: a demo account and signed packs of all three types.

The packs (``demo_catalogue``: two plaintext packs of hundreds of real docstrings, a KV-cache
pack and a LoRA pack for SmolLM2-135M, three small ones) are built and signed with the
protocol library (``pack_directory``) and published through the real ``pack_publish``
path, exactly like an upload. The model packs' payloads are built once and cached
(``demo_models``); each start only signs them again. Everything is idempotent: a second
run finds the account, the key and the versions, and changes (and builds) nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from protocol import SigningKey, pack_directory

from ..accounts.actor import Actor, system_actor
from ..accounts.models import SigningKey as SigningKeyRow
from ..accounts.models import User
from ..accounts.selectors import namespace_get
from ..accounts.services import signing_key_register, user_create
from ..testing.packs import write_pack_source
from .demo_catalogue import DemoModelPack, DemoPack, model_packs, plaintext_packs
from .demo_models import cached_model_pack_source
from .models import PackVersion
from .services import pack_publish

DEMO_USER = "demo"


def _demo_key(folder: Path) -> SigningKey:
    path = folder / "demo-signing-key.pem"
    if path.exists():
        return SigningKey.from_pem(path.read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.to_pem())
    return key


def _demo_password(folder: Path) -> str:
    path = folder / "demo-password"
    if path.exists():
        return path.read_text("utf-8").strip()
    folder.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password)
    return password


@dataclass(frozen=True)
class DemoResult:
    username: str
    password: str
    published: list[str]
    existing: list[str]


Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    return None


def _published(name: str, version: str) -> bool:
    ns, short = name.split("/")
    return PackVersion.objects.filter(
        pack__namespace__name=ns, pack__name=short, version=version
    ).exists()


def _with_evaluation(source: Path, questions: Sequence[dict[str, object]]) -> None:
    """Add ``evaluation.questions`` (SPEC 3.7) to the source's manifest; readers keep it."""
    if not questions:
        return
    path = source / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    manifest["evaluation"] = {"questions": list(questions)}
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")


def publish_plaintext_pack(
    *, actor: Actor, key: SigningKey, demo: DemoPack, workdir: Path, version: str = "1.0.0"
) -> PackVersion:
    """Build, sign and publish one plaintext demo pack (its card and questions included)."""
    source = write_pack_source(
        workdir / f"src-{demo.name.replace('/', '-')}",
        name=demo.name,
        version=version,
        title=demo.title,
        description=demo.description,
        keywords=demo.keywords,
        memories=demo.memories,
        license=demo.license,
    )
    _with_evaluation(source, demo.questions)
    pack_file = workdir / f"{demo.name.replace('/', '-')}-{version}.memcube"
    pack_directory(source, pack_file, keys=[key])
    return pack_publish(actor=actor, pack_file=pack_file, private=demo.private, price=demo.price)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def publish_model_pack(
    *,
    actor: Actor,
    key: SigningKey,
    demo: DemoModelPack,
    cache_dir: Path,
    workdir: Path,
    progress: Progress = _quiet,
) -> PackVersion:
    """Publish a KV or LoRA demo pack: payloads from the cache (built on a miss), the card,
    title, keywords and licence of the catalogue set on the manifest, signed with ``key``."""
    cached = cached_model_pack_source(demo.build, cache_dir, progress=progress)
    source = workdir / f"src-{demo.build.name.replace('/', '-')}"
    shutil.copytree(
        cached, source, copy_function=_link_or_copy, ignore=shutil.ignore_patterns("BUILT.json")
    )
    path = source / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    manifest.update(
        title=demo.title,
        description=demo.description,
        keywords=list(demo.keywords),
        license=demo.license,
        **demo.extra,
    )
    path.unlink()  # a hard link into the cache: never write through it
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    pack_file = workdir / f"{demo.build.name.replace('/', '-')}-{demo.build.version}.memcube"
    progress(f"signing and publishing {demo.build.name}@{demo.build.version}")
    pack_directory(source, pack_file, keys=[key])
    return pack_publish(actor=actor, pack_file=pack_file, price=demo.price)


def demo_publisher(folder: Path) -> tuple[Actor, SigningKey, str]:
    """The demo account (created once, password kept in ``folder``) and its registered key."""
    password = _demo_password(folder)
    user = User.objects.filter(username=DEMO_USER).first()
    if user is None:
        user = user_create(username=DEMO_USER, password=password)
    actor = system_actor(user)
    namespace = namespace_get(name=DEMO_USER)
    key = _demo_key(folder)
    with transaction.atomic():
        if not SigningKeyRow.objects.filter(namespace=namespace, keyid=key.keyid).exists():
            signing_key_register(
                actor=actor,
                namespace=namespace,
                public_key=key.public_key.to_text(),
                label="demo key",
            )
    return actor, key, password


def seed_demo(folder: Path, *, progress: Progress = _quiet, with_models: bool = True) -> DemoResult:
    """Create the demo account, its key and the demo packs (idempotent).

    ``folder`` keeps the password, the key and (``model-packs/``) the built KV and LoRA
    payloads. ``with_models=False`` skips the two model packs (no torch, no SmolLM2).
    """
    actor, key, password = demo_publisher(folder)
    published: list[str] = []
    existing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="memstore-demo-") as tmp:
        work = Path(tmp)
        for demo in plaintext_packs():
            ref = f"{demo.name}@1.0.0"
            if _published(demo.name, "1.0.0"):
                existing.append(ref)
                continue
            progress(f"publishing {ref} ({len(demo.memories)} memories)")
            publish_plaintext_pack(actor=actor, key=key, demo=demo, workdir=work)
            published.append(ref)
        for model_pack in model_packs() if with_models else ():
            ref = f"{model_pack.build.name}@{model_pack.build.version}"
            if _published(model_pack.build.name, model_pack.build.version):
                existing.append(ref)
                continue
            publish_model_pack(
                actor=actor,
                key=key,
                demo=model_pack,
                cache_dir=folder / "model-packs",
                workdir=work,
                progress=progress,
            )
            published.append(ref)
    return DemoResult(username=DEMO_USER, password=password, published=published, existing=existing)
