"""The transparency log's key comes from the pinned TUF root, not from first use (SPEC 16.2).

:class:`~.malicious_registry.TufRegistry` names a log key in root
(``x-memstore-log-keys``) and serves a FakeLog (``tests/transparency/fake_log.py``);
a log signed by any other key is refused at install, however it is served.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner

from protocol import SigningKey
from runtime.install import Installer
from runtime.tests.helpers import build_pack
from runtime.transparency import LogError
from tests.transparency.fake_log import FakeLog

from .conftest import REG
from .malicious_registry import TufRegistry

LOG_KEY = SigningKey.from_seed(b"L" * 32)
SWAPPED = SigningKey.from_seed(b"S" * 32)


@pytest.fixture
def sim(key: SigningKey) -> TufRegistry:
    registry = TufRegistry(now=datetime.now(UTC) - timedelta(minutes=1), log_key=LOG_KEY)
    registry.add_key("acme", key.public_key)
    registry.log = FakeLog(LOG_KEY)
    return registry


def _publish(sim: TufRegistry, tmp: Path, key: SigningKey, version: str = "1.0.0") -> None:
    pack = build_pack(tmp / version, name="acme/tips", version=version, keys=[key],
                      memories=[f"tips {version}"], mip_version="2.0")  # fmt: skip
    pub = sim.publish(pack)
    digest = hashlib.sha256(pub.manifest_bytes).hexdigest()
    sim.log.append("publish", "acme", pack="acme/tips", version=version, manifest_sha256=digest)


def test_a_log_signed_by_the_key_root_names_is_checked_and_installed(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(sim, tmp_path, key)
    result = installer.install("acme/tips", registry=REG)
    assert result.version == "1.0.0"
    assert not any("transparency log" in w for w in result.warnings)


def test_a_swapped_log_key_is_refused_even_on_first_contact(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    """The registry (or its web host) signs the log with a key of its own: the log is
    consistent and includes the publication, but root does not name its key."""
    _publish(sim, tmp_path, key)
    sim.log = FakeLog(SWAPPED, sim.log.bodies)
    with pytest.raises(LogError) as info:
        installer.install("acme/tips", registry=REG)
    assert info.value.code == "log.key_not_in_root"
    assert installer.installed() == []


def test_the_log_key_rotates_with_a_root_signed_by_the_root_keys(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(sim, tmp_path, key)
    installer.install("acme/tips", registry=REG)
    sim.repo.rotate_root(
        old_signers=[sim.root_signer], new_signers=[sim.root_signer], threshold=1,
        now=sim.now, log_keys=[SWAPPED.public_key.to_text()],
    )  # fmt: skip
    _publish(sim, tmp_path, key, "1.1.0")
    sim.log = FakeLog(SWAPPED, sim.log.bodies)
    assert installer.install("acme/tips", registry=REG).version == "1.1.0"
    # A root naming another log key but not signed by the root keys is not followed.
    forger = CryptoSigner.generate_ed25519()
    sim.repo.rotate_root(
        old_signers=[forger], new_signers=[forger], threshold=1, now=sim.now,
        log_keys=[LOG_KEY.public_key.to_text()],
    )  # fmt: skip
    _publish(sim, tmp_path, key, "1.2.0")
    sim.log = FakeLog(LOG_KEY, sim.log.bodies)
    with pytest.raises(Exception) as info:
        installer.install("acme/tips", registry=REG)
    assert getattr(info.value, "code", "") == "trust.bad_signature"
