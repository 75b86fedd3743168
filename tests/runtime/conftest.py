"""Cross-cutting runtime tests: the real ``memos`` CLI in subprocesses against a real HTTP registry.

Most use ``runtime.tests.fake_registry.FakeRegistry``: a real socket on
127.0.0.1 speaking the resolve contract of ``memstore/API.md``, with HTTP
Range, throttling (so a kill lands mid-download) and tampering switches the
real registry cannot offer. ``test_runtime_live_registry.py`` runs the same
flow against the real Django registry (live server, PostgreSQL) with the
registry's own fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from memos_cli import ROOT

from protocol import SigningKey
from runtime.tests.fake_registry import FakeRegistry


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(b"i" * 32)


@pytest.fixture
def registry(key: SigningKey) -> Iterator[FakeRegistry]:
    reg = FakeRegistry()
    reg.add_key("acme", key.public_key)
    reg.start()
    yield reg
    reg.stop()


@pytest.fixture
def env(tmp_path: Path, registry: FakeRegistry) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    e.update(
        MEMOS_HOME=str(tmp_path / "home"),
        MEMOS_REGISTRY=registry.url,
        MEMOS_EMBEDDER="hash",
        MEMOS_PRINCIPAL="new-user",
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
    )
    return e
