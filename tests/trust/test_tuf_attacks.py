"""The TUF spec's attacks, by a lying registry (or network, or mirror), each refused.

Every test installs ``acme/tips`` from :class:`~.malicious_registry.TufRegistry`
after it lied one way, and shows the install refused with a stable code and
nothing installed (or the installed version untouched). The list is the TUF
specification's ("Goals: attacks"), plus key substitution after first use and
a stolen online key (SPEC section 15; THREAT_MODEL.md names each test).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Timestamp

from memstore.tuf.repository import PublisherKey, VersionTarget
from protocol import SigningKey
from protocol.endorsement import endorse_key
from runtime.errors import MemosError
from runtime.install import Installer
from runtime.tests.helpers import build_pack

from .conftest import REG
from .malicious_registry import TufRegistry, endless, trickle


def _pack(tmp: Path, key: SigningKey, version: str = "1.0.0", name: str = "acme/tips",
          text: str = "") -> Path:  # fmt: skip
    return build_pack(tmp / f"{version}{text}", name=name, version=version, keys=[key],
                      memories=[f"{name} {version} {text}"], mip_version="2.0")  # fmt: skip


def _refused(installer: Installer, ref: str = "acme/tips") -> str:
    with pytest.raises(Exception) as info:  # TrustError, InstallError or MIPError
        installer.install(ref, registry=REG)
    code = getattr(info.value, "code", None)
    assert isinstance(code, str), info.value
    return code


def _nothing_installed(installer: Installer) -> None:
    assert installer.installed() == []


def _version(installer: Installer) -> str | None:
    pack = installer.installed_pack("acme/tips")
    return None if pack is None else pack.version


# ---------------------------------------------------------------------- the TUF spec's list


def test_arbitrary_installation_a_pack_the_index_does_not_list_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, evil_key: SigningKey,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The registry answers with a pack signed by a key it lists in its (unsigned) answer."""
    sim.publish(_pack(tmp_path, key))
    sim.fake.answers["acme/tips"] = sim.fake.publish(_pack(tmp_path, evil_key, text="evil"))
    sim.fake.add_key("acme", evil_key.public_key)  # in the resolve answer, not in the index
    assert _refused(installer) == "trust.target_mismatch"
    _nothing_installed(installer)


def test_endless_data_an_endless_timestamp_is_cut_off(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    sim.stream["timestamp.json"] = endless
    assert _refused(installer) == "trust.too_long"
    _nothing_installed(installer)


def test_extraneous_dependencies_a_role_cannot_vouch_outside_its_namespace(
    installer: Installer, sim: TufRegistry, key: SigningKey, evil_key: SigningKey,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Namespace ``evil`` lists a version of ``acme/tips``; its delegation covers ``evil/*``."""
    sim.publish(_pack(tmp_path, key))
    pub = sim.fake.publish(_pack(tmp_path, evil_key, "9.0.0", text="evil"))
    import hashlib

    forged = VersionTarget("acme/tips", "9.0.0", hashlib.sha256(pub.manifest_bytes).hexdigest(),
                           len(pub.manifest_bytes), sim.now.isoformat())  # fmt: skip
    evil = PublisherKey(evil_key.public_key.to_text(), evil_key.keyid, sim.now.isoformat())
    sim.repo.set_namespace("evil", [forged], [evil], sim.now)
    sim.repo.refresh_snapshot(sim.now)
    assert _refused(installer) == "trust.unknown_target"
    _nothing_installed(installer)


def test_fast_forward_a_timestamp_not_signed_by_the_online_key_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    md = Metadata[Timestamp].from_bytes(sim.repo.files["timestamp.json"])
    md.signed.version = 2**31
    md.signatures.clear()
    md.sign(CryptoSigner.generate_ed25519())
    sim.served["timestamp.json"] = md.to_bytes()
    sim.publish(_pack(tmp_path, key, "1.1.0"))
    assert _refused(installer) == "trust.bad_signature"
    assert _version(installer) == "1.0.0"


def test_indefinite_freeze_an_expired_timestamp_is_refused(
    installer: Installer, key: SigningKey, tmp_path: Path
) -> None:
    stale = TufRegistry(now=TufRegistry().now.replace(year=2020))  # signed long ago, replayed
    stale.add_key("acme", key.public_key)
    stale.publish(_pack(tmp_path, key))
    frozen = Installer(installer.home, installer.engine, transport=stale.transport())
    assert _refused(frozen) == "trust.expired"
    _nothing_installed(frozen)


def test_malicious_mirrors_altered_metadata_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    name = f"{sim.repo.namespaces['ns-acme'].signed.version}.ns-acme.json"
    body = json.loads(sim.repo.files[name])
    body["signed"]["targets"] = {}
    sim.served[name] = json.dumps(body).encode()
    assert _refused(installer) == "trust.mismatch"
    _nothing_installed(installer)


def test_malicious_mirrors_altered_blob_bytes_are_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    pub = sim.publish(_pack(tmp_path, key))
    sim.fake.tamper_blobs = {b["sha256"] for b in pub.blobs}
    assert _refused(installer).startswith(("integrity.", "download.", "cache.", "install."))
    _nothing_installed(installer)


def test_mix_and_match_an_old_namespace_role_under_a_new_snapshot_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    old = sim.repo.files[f"{sim.repo.namespaces['ns-acme'].signed.version}.ns-acme.json"]
    sim.publish(_pack(tmp_path, key, "1.1.0"))
    sim.served[f"{sim.repo.namespaces['ns-acme'].signed.version}.ns-acme.json"] = old
    assert _refused(installer) == "trust.mismatch"
    _nothing_installed(installer)


def test_rollback_an_older_timestamp_than_the_one_seen_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    old = sim.repo.files["timestamp.json"]
    sim.publish(_pack(tmp_path, key, "1.1.0"))
    installer.install("acme/tips", registry=REG)
    sim.served["timestamp.json"] = old
    assert _refused(installer) == "trust.rollback"
    assert _version(installer) == "1.1.0"


def test_rollback_an_answer_older_than_the_index_lists_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    """The registry keeps signing fresh metadata but resolves to an old version (holds back)."""
    first = sim.publish(_pack(tmp_path, key))
    sim.publish(_pack(tmp_path, key, "1.1.0"))
    sim.fake.answers["acme/tips"] = first
    assert _refused(installer) == "trust.not_latest"
    _nothing_installed(installer)


def test_slow_retrieval_a_trickling_timestamp_is_cut_off(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    sim.stream["timestamp.json"] = trickle
    installer.trust_deadline_s = 0.3
    assert _refused(installer) == "trust.slow_retrieval"
    _nothing_installed(installer)


def test_wrong_software_another_build_of_the_same_version_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    """Signed by the publisher's own key, but not the build the index lists for 1.0.0."""
    sim.publish(_pack(tmp_path, key))
    sim.fake.answers["acme/tips"] = sim.fake.publish(_pack(tmp_path, key, text="other build"))
    assert _refused(installer) == "trust.target_mismatch"
    _nothing_installed(installer)


# ---------------------------------------------------------------------- beyond the spec's list


def test_key_substitution_after_first_use_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, evil_key: SigningKey,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The operator registers a key of its own for acme (no endorsement) and signs 1.1.0."""
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    sim.add_key("acme", evil_key.public_key)
    sim.publish(_pack(tmp_path, evil_key, "1.1.0"))
    assert _refused(installer) == "trust.key_not_endorsed"
    assert _version(installer) == "1.0.0"


def test_a_stolen_online_key_cannot_vouch_for_a_new_publisher_key(
    installer: Installer, sim: TufRegistry, key: SigningKey, evil_key: SigningKey,
    tmp_path: Path,
) -> None:  # fmt: skip
    """With the online key the attacker re-signs every role: a self-endorsed key, a new
    version, fresh snapshot and timestamp. The pinned namespace keys still decide."""
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    forged = endorse_key("acme", evil_key.public_key, evil_key)  # not by a trusted key
    sim.keys["acme"].append(PublisherKey(
        evil_key.public_key.to_text(), evil_key.keyid, sim.now.isoformat(),
        endorsement={"keyid": forged.keyid, "sig": forged.to_dict()["sig"]},
    ))  # fmt: skip
    sim.publish(_pack(tmp_path, evil_key, "1.1.0"))  # re-signed with the stolen online key
    assert _refused(installer) == "trust.key_not_endorsed"
    assert _version(installer) == "1.0.0"


def test_a_namespace_transfer_does_not_make_the_new_owner_s_key_trusted(
    installer: Installer, sim: TufRegistry, key: SigningKey, evil_key: SigningKey,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The registry transfers acme (honestly or not), the delegation names the new owner,
    who registers a key of their own and signs 1.1.0: without an endorsement by a key the
    client pinned, the transfer changes nothing about which keys the client trusts."""
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    sim.transfer("acme", "mallory")
    sim.add_key("acme", evil_key.public_key)
    sim.publish(_pack(tmp_path, evil_key, "1.1.0"))
    assert _refused(installer) == "trust.key_not_endorsed"
    assert _version(installer) == "1.0.0"
    # With the old key's endorsement (a cooperative handover) the new key is followed.
    sim.set_key("acme", evil_key.keyid, endorsement=_endorsement(evil_key, key))
    assert installer.install("acme/tips", registry=REG).version == "1.1.0"


def _endorsement(new: SigningKey, by: SigningKey) -> dict[str, str]:
    sig = endorse_key("acme", new.public_key, by)
    return {"keyid": sig.keyid, "sig": sig.to_dict()["sig"]}


def test_a_root_not_signed_by_the_pinned_root_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    """A registry (or a network) that swaps its whole repository after the client pinned it."""
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    other = TufRegistry(now=sim.now)
    sim.repo.rotate_root(old_signers=[other.root_signer], new_signers=[other.root_signer],
                         threshold=1, now=sim.now)  # fmt: skip
    sim.publish(_pack(tmp_path, key, "1.1.0"))
    assert _refused(installer) == "trust.bad_signature"
    assert _version(installer) == "1.0.0"


def test_a_root_rotated_by_the_old_root_keys_is_followed(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    new_root = CryptoSigner.generate_ed25519()
    sim.repo.rotate_root(old_signers=[sim.root_signer], new_signers=[new_root], threshold=1,
                         now=sim.now + timedelta(seconds=1))  # fmt: skip
    sim.publish(_pack(tmp_path, key, "1.1.0"))
    assert installer.install("acme/tips", registry=REG).version == "1.1.0"


def test_a_yank_the_answer_hides_is_the_index_s_word(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    pub = sim.publish(_pack(tmp_path, key, "1.1.0"))
    sim.yank("acme/tips", "1.1.0")
    pub.yanked = False  # the answer says "not yanked"
    sim.fake.answers["acme/tips"] = pub
    assert _refused(installer) == "install.yanked"
    _nothing_installed(installer)


def test_refusals_are_memos_errors_with_trust_codes(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    sim.stream["timestamp.json"] = endless
    with pytest.raises(MemosError) as info:
        installer.install("acme/tips", registry=REG)
    assert info.value.code.startswith("trust.")
