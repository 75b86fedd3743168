"""One round trip per warm refresh: ``timestamp.json`` goes out while ngclient's root probe
is in flight, and the bytes handed over are still ngclient's to check."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from tuf.api.metadata import Metadata, Timestamp

from protocol import SigningKey
from runtime.client import RegistryClient
from runtime.errors import TrustError
from runtime.install import Installer
from runtime.tests.helpers import build_pack
from runtime.trust_index import TrustIndex

from .conftest import REG
from .malicious_registry import TufRegistry


def _pack(tmp: Path, key: SigningKey, version: str = "1.0.0") -> Path:
    return build_pack(tmp / version, name="acme/tips", version=version, keys=[key],
                      memories=[f"tips {version}"], mip_version="2.0")  # fmt: skip


def test_the_timestamp_is_asked_for_while_the_root_probe_is_in_flight(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path, home: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)  # pinned, metadata cached
    timestamp_asked = threading.Event()
    overlapped: list[bool] = []

    def handle(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        if name == "timestamp.json":
            timestamp_asked.set()
        elif name.endswith(".root.json") and name != "1.root.json":
            # The probe answers only once the timestamp was asked for (or gives up).
            overlapped.append(timestamp_asked.wait(timeout=10))
        return sim.handle(request)

    with RegistryClient(REG, transport=httpx.MockTransport(handle)) as client:
        index = TrustIndex(home, REG, client)
        with index.locked():
            index.refresh()
        assert index.lookup("acme/tips", "1.0.0").version == "1.0.0"
    assert overlapped == [True]


def test_a_prefetched_timestamp_is_still_verified_by_ngclient(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path, home: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    md = Metadata[Timestamp].from_bytes(sim.repo.files["timestamp.json"])
    md.signed.version += 1
    sim.served["timestamp.json"] = md.to_bytes()  # re-versioned, the signature now wrong
    with RegistryClient(REG, transport=sim.transport()) as client:
        index = TrustIndex(home, REG, client)
        with index.locked(), pytest.raises(TrustError) as info:
            index.refresh()
    assert info.value.code == "trust.bad_signature"
