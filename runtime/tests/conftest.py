"""Fixtures for runtime unit tests: fake embedder, fixed clock, signed packs, mock registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import SigningKey
from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine
from runtime.install import Installer
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import FixedClock


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "memos-home"))
    monkeypatch.setenv("MEMOS_EMBEDDER", "hash")
    monkeypatch.setenv("MEMOS_PRINCIPAL", "tester")
    monkeypatch.delenv("MEMOS_TOKEN", raising=False)
    monkeypatch.delenv("MEMOS_REGISTRY", raising=False)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def engine(home: Path, clock: FixedClock) -> Iterator[Engine]:
    eng = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None)
    yield eng
    eng.close()


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(b"k" * 32)


@pytest.fixture
def other_key() -> SigningKey:
    return SigningKey.from_seed(b"o" * 32)


@pytest.fixture
def registry(key: SigningKey) -> FakeRegistry:
    reg = FakeRegistry()
    reg.add_key("acme", key.public_key)
    return reg


@pytest.fixture
def installer(home: Path, engine: Engine, registry: FakeRegistry) -> Installer:
    return Installer(home, engine, transport=registry.as_transport())
