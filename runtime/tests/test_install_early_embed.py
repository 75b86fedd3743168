"""A fresh install embeds its memories while its tensors download, and only once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from protocol import BlobEntry, MediaType, SigningKey, read_pack
from runtime.cache import BlobCache
from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine
from runtime.install import Installer
from runtime.install.early_embed import EarlyEmbedding
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import FixedClock, build_pack, lora_cube

REG = "http://registry.test"
TEXTS = [f"memory number {i} about tea and trains" for i in range(40)]


class CountingEmbedder(HashEmbedder):
    """The hash embedder, counting each text it embeds and the thread that asked."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.threads: set[str] = set()

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.texts.extend(texts)
        self.threads.add(threading.current_thread().name)
        return super().embed(texts)


@pytest.fixture
def counting_engine(home: Path, clock: FixedClock) -> Engine:
    return Engine(home, embedder=CountingEmbedder(), clock=clock, maintain_every=None)


def _publish(
    registry: FakeRegistry, tmp: Path, key: SigningKey, version: str, texts: list[str]
) -> Path:
    cubes = [lora_cube(f"adapter-{i}", seed=i) for i in range(3)]
    path = build_pack(tmp / version, name="acme/early", version=version, keys=[key],
                      memories=texts, extra_cubes=cubes, mip_version="2.0")  # fmt: skip
    registry.blob_urls = True
    registry.publish(path)
    return path


def test_memories_are_embedded_once_on_the_background_thread_and_searchable(
    home: Path, counting_engine: Engine, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key, "1.0.0", TEXTS)
    installer = Installer(home, counting_engine, transport=registry.as_transport())
    embedder = counting_engine.embedder
    assert isinstance(embedder, CountingEmbedder)

    installer.install("acme/early", registry=REG, everything=True)

    assert sorted(embedder.texts) == sorted(TEXTS)  # each text once, none twice
    assert embedder.threads == {"memos-early-embed_0"}
    # The early vectors are the ones the engine would have computed itself.
    hits = counting_engine.search("memory number 7 about tea and trains", k=1)
    assert hits and hits[0].memory.text == TEXTS[7]
    counting_engine.close()


def test_an_upgrade_embeds_only_the_changed_texts_on_the_callers_thread(
    home: Path, counting_engine: Engine, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key, "1.0.0", TEXTS)
    installer = Installer(home, counting_engine, transport=registry.as_transport())
    installer.install("acme/early", registry=REG, everything=True)
    embedder = counting_engine.embedder
    assert isinstance(embedder, CountingEmbedder)
    embedder.texts.clear()
    embedder.threads.clear()

    _publish(registry, tmp_path, key, "1.1.0", [*TEXTS[:-1], "a brand new memory"])
    installer.upgrade(["acme/early"], registry=REG, everything=True)

    assert embedder.texts == ["a brand new memory"]
    assert "memos-early-embed_0" not in embedder.threads
    counting_engine.close()


def test_a_record_the_reader_refuses_is_left_to_the_commit_step(tmp_path: Path) -> None:
    """The background thread decides nothing: a bad blob gives no vectors and no error."""
    cache = BlobCache(tmp_path / "cache")
    good, _ = cache.add_bytes(b'{"id": "a", "text": "tea"}\n{"id": "b", "text": "trains"}\n')
    bad, _ = cache.add_bytes(b'{"id": "a", "text": ""}\n')
    manifest = read_pack(
        build_pack(
            tmp_path, name="acme/early", memories=["x"], keys=[SigningKey.from_seed(b"e" * 32)]
        )
    ).manifest
    embedder = CountingEmbedder()
    early = EarlyEmbedding(manifest, cache, embedder)
    for sha in (good, bad, "0" * 64):  # the last one is not in the cache at all
        early.on_ready(BlobEntry(sha, 1, MediaType.MEMORIES_JSONL.value, ("notes",), None))
    early.on_ready(BlobEntry(good, 1, "application/octet-stream", ("w",), "f"))  # not text
    vectors = early.vectors()
    early.close()
    assert sorted(vectors) == ["tea", "trains"]
    assert embedder.texts == ["tea", "trains"]
