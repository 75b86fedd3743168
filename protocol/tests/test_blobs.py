import copy

import pytest

from protocol import (
    BlobEntry,
    Manifest,
    ManifestError,
    ModelFingerprint,
    fingerprint_digest,
    manifest_blobs,
    select_blobs,
)
from protocol.conformance import generate as g

FP = fingerprint_digest(ModelFingerprint.from_dict(g.FINGERPRINT))
OTHER_MODEL = {**g.FINGERPRINT, "num_layers": 3}
OTHER_FP = fingerprint_digest(ModelFingerprint.from_dict(OTHER_MODEL))


def _all_types(version: str = "2.0") -> Manifest:
    data = g.manifest_dict(
        g.plaintext_cube(),
        g.activation_cube(g.kv_cache()),
        g.parameter_cube(),
        mip_version=version,
    )
    return Manifest.from_dict(data)


@pytest.mark.parametrize("version", ["1.0", "1.1", "2.0"])
def test_manifest_blobs_lists_each_digest_once_sorted_with_cube_and_fingerprint(version):
    manifest = _all_types(version)
    blobs = manifest_blobs(manifest)
    assert [b.sha256 for b in blobs] == sorted(p.sha256 for p in manifest.payloads())
    by_type = {b.media_type: b for b in blobs}
    notes = by_type["application/vnd.mip.memories+jsonl"]
    assert notes.cubes == ("notes",) and notes.fingerprint is None and not notes.is_tensor_bound
    assert notes.paths == ("payloads/notes/memories.jsonl",)
    kv = by_type["application/vnd.mip.kv-cache+safetensors"]
    assert kv.cubes == ("prefix",) and kv.fingerprint == FP and kv.fingerprints == (FP,)
    assert by_type["application/vnd.mip.lora-config+json"].fingerprint == FP
    assert isinstance(kv, BlobEntry) and kv.size == len(g.kv_cache())


def test_payloads_with_the_same_content_are_one_blob():
    data = g.manifest_dict(g.plaintext_cube("a"), g.plaintext_cube("b"), mip_version="2.0")
    (blob,) = manifest_blobs(Manifest.from_dict(data))
    assert blob.cubes == ("a", "b")
    assert blob.paths == ("payloads/a/memories.jsonl", "payloads/b/memories.jsonl")


def test_select_blobs_picks_plaintext_and_the_running_models_tensors():
    other = g.activation_cube(g.kv_cache(OTHER_MODEL), "other")
    other["model"] = dict(OTHER_MODEL)
    data = g.manifest_dict(
        g.plaintext_cube(), g.activation_cube(g.kv_cache()), other, mip_version="2.0"
    )
    manifest = Manifest.from_dict(data)
    mine = select_blobs(manifest, fingerprint=FP)
    assert {b.cubes for b in mine} == {("notes",), ("prefix",)}
    theirs = select_blobs(manifest, fingerprint=OTHER_FP)
    assert {b.cubes for b in theirs} == {("notes",), ("other",)}
    assert {b.cubes for b in select_blobs(manifest, fingerprint=None)} == {("notes",)}
    assert len(select_blobs(manifest, fingerprint=None, everything=True)) == 3


def test_a_config_shared_by_cubes_for_two_models_is_selected_for_both():
    mine = g.parameter_cube(cube_id="a")
    theirs = g.parameter_cube(cube_id="b")
    theirs["model"] = dict(OTHER_MODEL)
    manifest = Manifest.from_dict(g.manifest_dict(mine, theirs, mip_version="2.0"))
    config = next(b for b in manifest_blobs(manifest) if b.media_type.endswith("config+json"))
    assert config.fingerprints == tuple(sorted((FP, OTHER_FP)))
    assert config.fingerprint == min(FP, OTHER_FP)
    for fp in (FP, OTHER_FP):
        assert config in select_blobs(manifest, fingerprint=fp)


def _conflicting(version: str, field: str, value: object) -> dict:
    data = g.manifest_dict(g.plaintext_cube("a"), g.plaintext_cube("b"), mip_version=version)
    data = copy.deepcopy(data)
    data["cubes"][1]["payloads"][0][field] = value
    return data


def test_a_2x_manifest_naming_one_digest_with_two_sizes_is_refused():
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(_conflicting("2.0", "size", 1))
    assert info.value.code == "manifest.blob_conflict"
    assert info.value.detail["digests"] == [g.payload_entry("x", "y", g.NOTES)["sha256"]]


def test_a_2x_manifest_naming_one_digest_with_two_media_types_is_refused():
    cube = g.parameter_cube(g.LORA_CONFIG, g.LORA_CONFIG)
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(g.manifest_dict(cube, mip_version="2.0"))
    assert info.value.code == "manifest.blob_conflict"


def test_a_1x_manifest_is_parsed_but_its_blob_list_refuses_the_conflict():
    manifest = Manifest.from_dict(_conflicting("1.1", "size", 1))
    with pytest.raises(ManifestError) as info:
        manifest_blobs(manifest)
    assert info.value.code == "manifest.blob_conflict"


def test_one_blob_with_two_embedding_dimensions_is_a_conflict():
    emb = {"model": "example/embedder", "dimension": 3}
    data = g.manifest_dict(
        g.plaintext_cube("a", embedding=emb),
        g.plaintext_cube("b", embedding={**emb, "dimension": 4}),
        mip_version="2.0",
    )
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(data)
    assert info.value.code == "manifest.blob_conflict"


def test_fingerprint_digest_is_the_method_and_ignores_weights():
    fp = ModelFingerprint.from_dict({**g.FINGERPRINT, "weights_sha256": "0" * 64})
    assert fp.digest() == FP == fingerprint_digest(fp)
