"""The installer checks that a resolve answer is for what was asked (issue 12, item 6).

A registry -- or whoever sits between it and the client on ``http://`` -- can
answer any resolve. Each test makes the fake registry lie in one way and shows
the install refused with a stable code and nothing installed or changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import SigningKey
from runtime.engine.engine import Engine
from runtime.errors import InstallError
from runtime.install import Installer
from runtime.tests.fake_registry import FakeRegistry, Published
from runtime.tests.helpers import build_pack

REG = "http://registry.test"


def _publish(registry: FakeRegistry, tmp: Path, key: SigningKey, name: str, version: str
             ) -> Published:  # fmt: skip
    return registry.publish(build_pack(tmp, name=name, version=version, keys=[key],
                                       memories=[f"{name} {version}"]))  # fmt: skip


def _refused(installer: Installer, ref: str) -> str:
    with pytest.raises(InstallError) as info:
        installer.install(ref, registry=REG)
    return info.value.code


def test_an_answer_for_another_pack_is_refused(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key, "acme/tips", "1.0.0")
    registry.answers["acme/tips"] = _publish(registry, tmp_path, key, "acme/evil", "1.0.0")
    assert _refused(installer, "acme/tips") == "install.wrong_pack"
    assert installer.installed() == []


def test_an_answer_outside_the_range_asked_for_is_refused(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key, "acme/tips", "2.0.0")
    registry.answers["acme/tips"] = _publish(registry, tmp_path, key, "acme/tips", "1.0.0")
    assert _refused(installer, "acme/tips@^2") == "install.version_out_of_range"
    assert installer.installed() == []


def test_a_yanked_version_is_taken_only_when_pinned_exactly(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    yanked = _publish(registry, tmp_path, key, "acme/tips", "1.1.0")
    yanked.yanked = True
    registry.answers["acme/tips"] = yanked  # offered for a range, as no honest registry does
    assert _refused(installer, "acme/tips@^1") == "install.yanked"
    assert installer.installed() == []
    result = installer.install("acme/tips@1.1.0", registry=REG)
    assert result.version == "1.1.0" and any("yanked" in w for w in result.warnings)


def test_an_upgrade_to_an_older_version_is_refused_as_a_rollback(
    installer: Installer, engine: Engine, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    old = _publish(registry, tmp_path, key, "acme/tips", "1.0.0")
    _publish(registry, tmp_path, key, "acme/tips", "1.1.0")
    installer.install("acme/tips", registry=REG)
    registry.answers["acme/tips"] = old  # a stale or lying registry
    with pytest.raises(InstallError) as info:
        installer.upgrade(["acme/tips"], registry=REG)
    assert info.value.code == "install.rollback"
    assert [p.version for p in installer.installed()] == ["1.1.0"]
    assert engine.get("acme/tips/notes/m1", record=False).text == "acme/tips 1.1.0"
    # a downgrade on purpose, pinned exactly, is the user's call
    assert installer.install("acme/tips@1.0.0", registry=REG).version == "1.0.0"
