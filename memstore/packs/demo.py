"""Demo data for ``manage.py memstore_up``: a demo account and a few signed packs.

The packs are built and signed with the protocol library (``pack_directory``)
and published through the real ``pack_publish`` path, exactly like an upload.
Everything is idempotent: a second run finds the account, the key and the
versions and changes nothing.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from protocol import SigningKey

from ..accounts.actor import system_actor
from ..accounts.models import SigningKey as SigningKeyRow
from ..accounts.models import User
from ..accounts.selectors import namespace_get
from ..accounts.services import signing_key_register, user_create
from ..testing.packs import build_pack
from .models import PackVersion
from .services import FREE, Price, pack_publish

DEMO_USER = "demo"


@dataclass(frozen=True)
class DemoPack:
    name: str
    title: str
    description: str
    keywords: tuple[str, ...]
    memories: tuple[str, ...]
    private: bool = False
    price: Price = FREE
    license: str = "CC-BY-4.0"


DEMO_PACKS = (
    DemoPack(
        name="demo/python-tips",
        title="Python tips",
        description="Small, practical facts about Python that an assistant should remember.",
        keywords=("python", "programming"),
        memories=(
            "Use pathlib.Path instead of os.path for file system paths in new code.",
            "A dataclass with frozen=True is hashable and cannot be changed after creation.",
            "The walrus operator := assigns inside an expression, "
            "e.g. while (line := f.readline()).",
            "functools.lru_cache memoises a function; call cache_clear() to reset it.",
            "Use subprocess.run with a list of arguments, never a shell string built from input.",
            "Never unpickle data from an untrusted source: pickle can execute arbitrary code.",
            "f-strings support = for debugging: f'{value=}' prints the expression and its value.",
            "The tomllib module reads TOML files and is in the standard library since 3.11.",
        ),
        license="Apache-2.0",
    ),
    DemoPack(
        name="demo/kitchen-notes",
        title="Kitchen notes (paid)",
        description="A chef's working notes on bread, stock and knife care.",
        keywords=("cooking", "bread"),
        memories=(
            "A sourdough starter is ready when it doubles within six hours of feeding.",
            "Salt the pasta water until it tastes like a mild seawater.",
            "Roast the bones before simmering them for a darker, richer brown stock.",
            "Hone a chef's knife before each use and sharpen it on a stone every few months.",
            "Rest a roast for ten minutes so that the juices settle before carving.",
        ),
        price=Price(amount_minor=499, currency="EUR"),
        license="LicenseRef-Proprietary",
    ),
    DemoPack(
        name="demo/team-handbook",
        title="Team handbook (private)",
        description="Internal conventions of the demo team; visible to its members only.",
        keywords=("handbook",),
        memories=(
            "Deploys happen on Tuesdays and Thursdays after the 10:00 stand-up.",
            "The on-call engineer owns the incident channel until the post-mortem is written.",
            "Every pull request needs one review and a green CI run before it is merged.",
        ),
        private=True,
    ),
)


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


def seed_demo(folder: Path) -> DemoResult:
    """Create the demo account, its key and the demo packs (idempotent)."""
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
    published: list[str] = []
    existing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="memstore-demo-") as tmp:
        for demo in DEMO_PACKS:
            ns, name = demo.name.split("/")
            ref = f"{demo.name}@1.0.0"
            if PackVersion.objects.filter(
                pack__namespace__name=ns, pack__name=name, version="1.0.0"
            ).exists():
                existing.append(ref)
                continue
            pack_file = build_pack(
                Path(tmp),
                name=demo.name,
                version="1.0.0",
                keys=[key],
                title=demo.title,
                description=demo.description,
                keywords=demo.keywords,
                memories=demo.memories,
                license=demo.license,
            )
            pack_publish(actor=actor, pack_file=pack_file, private=demo.private, price=demo.price)
            published.append(ref)
    return DemoResult(username=DEMO_USER, password=password, published=published, existing=existing)
