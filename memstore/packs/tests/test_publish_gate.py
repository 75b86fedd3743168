"""Who may publish is decided before the pack is inflated (issue 13, limits).

Each pack here fails loudly if it is decompressed past its manifest: garbage
follows the first megabyte of the gzip stream, so a refusal with
``registry.forbidden`` (not an ``archive.*`` error from the full reader)
proves the publisher was checked first.
"""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from pathlib import Path
from typing import Any, cast

import pytest

from memstore.accounts.actor import Actor
from memstore.accounts.models import User
from memstore.errors import ForbiddenError
from memstore.packs.models import PackVersion
from memstore.packs.publish_gate import manifest_namespace
from memstore.packs.services import pack_publish
from memstore.testing.factories import UserFactory, publisher
from memstore.testing.packs import build_pack
from protocol import MANIFEST_MEMBER

pytestmark = pytest.mark.django_db

GARBAGE = b"\xff" * 65536


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _loud_pack(tmp_path: Path, manifest: bytes, payload_path: str) -> Path:
    """A gzip'd tar: the manifest, then a 4 MiB member whose stream turns to garbage at 1 MiB."""
    padded = manifest + b"\0" * (-len(manifest) % 512)
    head = _tar_header(MANIFEST_MEMBER, len(manifest)) + padded
    head += _tar_header(payload_path, 4 * 1024**2) + os.urandom(1024**2)
    deflate = zlib.compressobj(wbits=31)  # gzip framing
    out = tmp_path / "loud.memcube"
    out.write_bytes(deflate.compress(head) + deflate.flush(zlib.Z_SYNC_FLUSH) + GARBAGE)
    return out


def _manifest_of(pack_file: Path) -> tuple[bytes, str]:
    with tarfile.open(pack_file, "r:gz") as tar:
        member = tar.next()
        assert member is not None and member.name == MANIFEST_MEMBER
        handle = tar.extractfile(member)
        assert handle is not None
        data = handle.read()
        payload = next(m.name for m in tar if m.name.endswith(".jsonl"))
    return data, payload


@pytest.fixture
def acme_loud_pack(tmp_path: Path, alice: Any) -> Path:
    """A pack for acme whose inflation past the manifest fails loudly."""
    _, _, key = alice
    good = build_pack(tmp_path, name="acme/docs", keys=[key], memories=["one"])
    manifest, payload = _manifest_of(good)
    return _loud_pack(tmp_path, manifest, payload)


def test_the_full_reader_fails_loudly_on_the_loud_pack(
    acme_loud_pack: Path, alice_actor: Actor, local_storage: Any
) -> None:
    from protocol import MIPError

    with pytest.raises(MIPError):
        pack_publish(actor=alice_actor, pack_file=acme_loud_pack)


def test_manifest_peek_stops_at_the_manifest(acme_loud_pack: Path) -> None:
    assert manifest_namespace(acme_loud_pack, max_manifest_bytes=4 * 1024**2) == "acme"


def test_manifest_peek_inflates_no_more_than_its_cap(tmp_path: Path) -> None:
    zeros = zlib.compressobj(wbits=31)
    bomb = tmp_path / "bomb.memcube"
    with bomb.open("wb") as out:
        out.write(zeros.compress(_tar_header(MANIFEST_MEMBER, 64 * 1024**2)))
        for _ in range(64):  # 64 MiB of zeros, about 64 KiB on disk
            out.write(zeros.compress(b"\0" * 1024**2))
        out.write(zeros.flush())
    assert manifest_namespace(bomb, max_manifest_bytes=1024) is None


def test_stranger_bomb_is_refused_before_it_is_read(
    tmp_path: Path, acme_loud_pack: Path, local_storage: Any
) -> None:
    mallory = cast(User, UserFactory(username="mallory"))  # type: ignore[no-untyped-call]
    stranger = Actor(user=mallory, scopes=frozenset({"read", "publish:*"}))
    with pytest.raises(ForbiddenError) as err:
        pack_publish(actor=stranger, pack_file=acme_loud_pack)
    assert err.value.code == "registry.forbidden"
    assert "any namespace" in str(err.value)
    garbage = tmp_path / "garbage.memcube"
    garbage.write_bytes(b"\x1f\x8b" + GARBAGE)
    with pytest.raises(ForbiddenError):
        pack_publish(actor=stranger, pack_file=garbage)
    assert PackVersion.objects.count() == 0


def test_maintainer_of_another_namespace_is_refused_before_inflation(
    acme_loud_pack: Path, local_storage: Any
) -> None:
    carol, _, _ = publisher("other", "carol")
    actor = Actor(user=carol, scopes=frozenset({"read", "publish:other"}))
    with pytest.raises(ForbiddenError) as err:
        pack_publish(actor=actor, pack_file=acme_loud_pack)
    assert "acme" in str(err.value)


def test_token_without_publish_scope_is_refused_before_inflation(
    acme_loud_pack: Path, alice: Any, local_storage: Any
) -> None:
    read_only = Actor(user=alice[0], scopes=frozenset({"read"}))
    with pytest.raises(ForbiddenError):
        pack_publish(actor=read_only, pack_file=acme_loud_pack)


def test_publisher_still_publishes_after_the_gate(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    pack_file = build_pack(tmp_path, name="acme/docs", keys=[alice[2]], memories=["one"])
    assert pack_publish(actor=alice_actor, pack_file=pack_file).version == "1.0.0"
    assert io.BytesIO(pack_file.read_bytes()).read(2) == b"\x1f\x8b"
