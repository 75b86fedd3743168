"""Fixtures for the trust tests: a TUF-serving (and lying) registry and an installer on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocol import SigningKey
from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine
from runtime.install import Installer
from runtime.tests.helpers import FixedClock

from .malicious_registry import TufRegistry

REG = "http://registry.test"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "memos-home"))
    monkeypatch.setenv("MEMOS_EMBEDDER", "hash")
    monkeypatch.delenv("MEMOS_TOKEN", raising=False)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(b"k" * 32)


@pytest.fixture
def evil_key() -> SigningKey:
    return SigningKey.from_seed(b"e" * 32)


@pytest.fixture
def sim(key: SigningKey) -> TufRegistry:
    registry = TufRegistry(now=datetime.now(UTC) - timedelta(minutes=1))
    registry.add_key("acme", key.public_key)
    return registry


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def engine(home: Path) -> Iterator[Engine]:
    eng = Engine(home, embedder=HashEmbedder(), clock=FixedClock(), maintain_every=None)
    yield eng
    eng.close()


@pytest.fixture
def installer(home: Path, engine: Engine, sim: TufRegistry) -> Installer:
    return Installer(home, engine, transport=sim.transport())
