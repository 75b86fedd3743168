"""Generation with memory injected: from a pack, from texts, or from a scheduler plan.

The prompt is always ``[cached or plaintext memory prefix] + [further
plaintext memories] + [query]`` in one :class:`~runtime.models.kv.PromptTemplate`:

* a KV cache (a pack's activation cube, or a memory promoted by the engine)
  is used only when its fingerprint matches the running model and no LoRA
  adapter is attached; its tokens are the start of the prompt, so the output
  equals that of the same prompt prefilled as plaintext;
* otherwise the memories go in as plaintext, and the result says why
  (``form`` and ``reason``);
* several KV caches (of several packs, or a plan's several activation
  items) are composed behind one shared header in the given order
  (:mod:`runtime.models.kv_compose`: keys re-rotated to their offsets, a
  ``recompute`` fraction of tokens recomputed to restore attention across
  caches); a cache that cannot be used falls back to plaintext when its text
  is known.

:func:`generate_with_memory` serves ``memos generate`` (a pack or texts);
:func:`generate_with_plan` takes a :class:`runtime.engine.scheduler.Plan`
(duck-typed: items with ``form``, ``payload`` and ``memory``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol import MediaType, MemoryType, ModelFingerprint

from .causal_lm import LoadedModel, greedy_generate
from .errors import FingerprintMismatchError, KVCacheError, ModelError
from .kv import KVFiles, LoadedKV, load_kv, read_kv_fingerprint, template_for
from .kv_compose import DEFAULT_RECOMPUTE, ComposedKV, compose_kv
from .kv_installed import KVFilesResolver
from .lora import attach_adapter, detach_adapter
from .packs import ModelMemory, read_model_pack

__all__ = [
    "MemoryGeneration",
    "MemorySource",
    "generate_with_memory",
    "generate_with_plan",
]


@dataclass(frozen=True)
class MemorySource:
    """Memory to inject: plaintext texts, KV payloads and LoRA adapters, each with its
    fingerprint."""

    texts: tuple[str, ...] = ()
    kv: tuple[tuple[ModelFingerprint | None, KVFiles], ...] = ()
    adapters: tuple[tuple[ModelFingerprint | None, Path, Path], ...] = ()
    label: str = "memories"

    @classmethod
    def merged(cls, sources: Sequence[MemorySource]) -> MemorySource:
        """One source holding several packs' memory, in order (their caches compose)."""
        if len(sources) == 1:
            return sources[0]
        return cls(
            texts=tuple(t for s in sources for t in s.texts),
            kv=tuple(k for s in sources for k in s.kv),
            adapters=tuple(a for s in sources for a in s.adapters),
            label=" + ".join(s.label for s in sources),
        )

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> MemorySource:
        return cls(texts=tuple(texts))

    @classmethod
    def from_model_memory(cls, memory: ModelMemory) -> MemorySource:
        return cls(
            texts=memory.texts,
            kv=tuple((cube.model, path) for cube, path in memory.kv),
            adapters=tuple((cube.model, c, w) for cube, c, w in memory.adapters),
            label=memory.pack.manifest.ref,
        )

    @classmethod
    def from_pack(cls, pack: Path, work: Path) -> MemorySource:
        """A ``.memcube`` (checked and extracted into ``work``), or a pack (source) folder."""
        from protocol import Pack, build_manifest

        from .packs import open_model_memory

        pack = Path(pack)
        if pack.is_dir():  # digests and sizes are computed from the files themselves
            manifest, _files = build_manifest(pack)
            opened = Pack(manifest, manifest.canonical_bytes(), (), "", 0, root=pack)
            return cls.from_model_memory(open_model_memory(opened))
        return cls.from_model_memory(read_model_pack(pack, work))

    @classmethod
    def from_installed(cls, name: str, home: Path, work: Path) -> MemorySource:
        """An installed pack (``namespace/name``) of the local engine at ``home``.

        Read from the content-addressed cache files themselves (no copy); each
        blob is re-hashed before it is used (``cache.blob_corrupt`` if bad).
        """
        from runtime.engine.engine import Engine
        from runtime.install import Installer

        from .packs import open_model_memory

        engine = Engine(Path(home), maintain_every=None)
        try:
            installer = Installer(Path(home), engine)
            if installer.installed_pack(name) is None:
                raise ModelError(f"pack {name} is not installed", code="model.pack_not_installed")
            view = installer.installed_view(name, work)
        finally:
            engine.close()
        return cls.from_model_memory(open_model_memory(view))


@dataclass(frozen=True)
class MemoryGeneration:
    """What was generated, in which form the memory went in, and why."""

    text: str
    tokens: tuple[int, ...]
    form: str  # activation | plaintext | none (plus "+parameter" with an adapter)
    reason: str
    ttft_s: float
    total_s: float
    prompt_tokens: int
    cached_tokens: int
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "form": self.form,
            "reason": self.reason,
            "ttft_s": round(self.ttft_s, 6),
            "total_s": round(self.total_s, 6),
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "notes": list(self.notes),
        }


def _matching_kv(
    lm: LoadedModel, candidates: Sequence[tuple[ModelFingerprint | None, KVFiles]]
) -> tuple[list[tuple[ModelFingerprint | None, KVFiles]], list[str]]:
    """KV payloads that fit the running model, and a note for each that does not."""
    fits, notes = [], []
    for expected, files in candidates:
        path = files[0] if isinstance(files, tuple) else files  # a chunked cache: its first
        try:
            fp = expected if expected is not None else read_kv_fingerprint(path)
        except KVCacheError as exc:
            notes.append(f"KV cache {path.name} is unusable: {exc.message}")
            continue
        fields = fp.mismatches(lm.fingerprint)
        if fields:
            notes.append(
                f"KV cache {path.name} was built for {fp.model_id} "
                f"(differs in {', '.join(fields)}): not used"
            )
        else:
            fits.append((expected, files))
    return fits, notes


def _run(
    lm: LoadedModel,
    *,
    kv: LoadedKV | ComposedKV | None,
    texts: Sequence[str],
    query: str,
    template: str | None,
    max_new_tokens: int,
    form: str,
    reason: str,
    notes: Sequence[str],
) -> MemoryGeneration:
    tpl = template_for(lm, template)
    if kv is not None:
        head = list(kv.input_ids)
        more = list(getattr(kv, "closing_ids", ()))
        more += lm.encode(tpl.more(texts), add_special_tokens=False) if texts else []
        cache = kv.to_cache(lm)
    elif texts:
        head, more, cache = lm.encode(tpl.prefix(texts), add_special_tokens=True), [], None
    else:
        head, more, cache = [], [], None
    query_ids = lm.encode(tpl.query_text(query, standalone=not head), add_special_tokens=not head)
    result = greedy_generate(
        lm, [*head, *more, *query_ids], cache=cache, max_new_tokens=max_new_tokens
    )
    return MemoryGeneration(
        result.text,
        result.tokens,
        form,
        reason,
        result.ttft_s,
        result.total_s,
        result.prompt_tokens,
        result.cached_tokens,
        tuple(notes),
    )


def generate_with_memory(
    lm: LoadedModel,
    source: MemorySource,
    query: str,
    *,
    mode: str = "auto",
    use_adapter: bool = False,
    max_new_tokens: int = 64,
    recompute: float = DEFAULT_RECOMPUTE,
) -> MemoryGeneration:
    """Generate for ``query`` with ``source``'s memory (``mode``: auto, kv, plaintext, none).

    ``auto`` uses the KV caches that fit the running model (several are
    composed, recomputing a ``recompute`` fraction of their tokens), else
    plaintext. ``kv`` raises when no cache fits. With ``use_adapter`` the
    source's adapter for this base model is attached for this call (a
    mismatch is refused before touching the model) and memories go as plaintext.
    """
    notes: list[str] = []
    attached = False
    if use_adapter:
        if not source.adapters:
            raise ModelError("the memory source has no LoRA adapter", code="model.adapter_missing")
        expected, config, weights = source.adapters[0]
        attach_adapter(lm, config, weights, expected=expected)
        attached = True
    try:
        fits, notes = _matching_kv(lm, source.kv) if mode in ("auto", "kv") else ([], [])
        suffix = "+parameter" if attached else ""
        if mode == "none" or (not source.texts and not fits):
            return _run(
                lm, kv=None, texts=[], query=query, template=None, max_new_tokens=max_new_tokens,
                form="none" + suffix, reason="no memory injected", notes=notes,
            )  # fmt: skip
        if mode in ("auto", "kv") and fits and not attached:
            loaded = [load_kv(path, lm, expected=expected) for expected, path in fits]
            composed = compose_kv(lm, loaded, recompute=recompute)
            what = (
                f"KV cache of {source.label} ({composed.num_tokens} tokens)"
                if len(loaded) == 1
                else f"{len(loaded)} KV caches of {source.label} composed ({composed.num_tokens} "
                f"tokens, {composed.recomputed} recomputed)"
            )
            return _run(
                lm, kv=composed, texts=[], query=query, template=composed.template,
                max_new_tokens=max_new_tokens, form="activation",
                reason=f"{what} fit {lm.fingerprint.model_id}: no prefill of the memories",
                notes=notes,
            )  # fmt: skip
        if mode == "kv":
            why = (
                "a LoRA adapter is attached (KV caches belong to the base model)"
                if attached
                else "no KV cache fits the running model"
            )
            raise KVCacheError(f"cannot inject a KV cache: {why}", code="model.kv_unavailable")
        if mode == "plaintext":
            reason = "plaintext: requested"
        elif attached:
            reason = "plaintext: a LoRA adapter is attached, KV caches belong to the base model"
        elif source.kv and not fits:
            reason = "plaintext: no KV cache fits the running model"
        else:
            reason = "plaintext: the source has no KV cache"
        return _run(
            lm, kv=None, texts=source.texts, query=query, template=None,
            max_new_tokens=max_new_tokens, form="plaintext" + suffix,
            reason=f"{reason} ({len(source.texts)} memories)", notes=notes,
        )  # fmt: skip
    finally:
        if attached:
            detach_adapter(lm)


def generate_with_plan(
    lm: LoadedModel,
    plan: Any,
    query: str | None = None,
    *,
    blob_path: Callable[[str], Path] | None = None,
    kv_files: KVFilesResolver | None = None,
    max_new_tokens: int = 64,
    recompute: float | None = None,
) -> MemoryGeneration:
    """Generate with a scheduler plan injected: its KV caches when they fit, plaintext otherwise.

    ``plan`` is a :class:`runtime.engine.scheduler.Plan`. Its ``activation``
    items are loaded and checked against the running model and composed in
    the plan's order (``recompute``: the plan budget's, else the default); a
    cache that does not fit falls back to its memory's text (for promoted
    plaintext memories) with a note. Its ``parameter`` item is
    attached for this call when ``blob_path`` (sha256 -> file, e.g.
    ``BlobCache(home).blob_path``) can locate the adapter config; then KV
    caches are not used. ``query`` defaults to the plan's query.
    ``kv_files`` (:func:`.kv_installed.installed_kv_files`) finds the chunks of
    a cube stored as KV chunks (SPEC 4.2.2), whose plan item names one chunk
    only; with it a chunked cube composes like a single-blob one.
    """
    query = plan.query if query is None else query
    notes: list[str] = []
    texts: list[str] = []
    kv_items = []
    adapter_item = None
    for item in plan.items:
        if item.form == MemoryType.PLAINTEXT:
            texts.append(item.memory.text)
        elif item.form == MemoryType.ACTIVATION:
            kv_items.append(item)
        elif item.form == MemoryType.PARAMETER:
            adapter_item = item
    attached = False
    if adapter_item is not None:
        attached = _attach_plan_adapter(lm, adapter_item, blob_path, notes)
    try:
        caches: list[tuple[Any, LoadedKV]] = []
        for item in kv_items:
            memory = item.memory
            text = memory.text if memory.memory_type == MemoryType.PLAINTEXT else None
            if not attached and item.payload:
                expected = (
                    memory.fingerprint if memory.memory_type == MemoryType.ACTIVATION else None
                )
                try:
                    found = kv_files(memory) if kv_files is not None else None
                    files = found.files if found is not None else Path(item.payload)
                    declared = found.declared if found is not None else None
                    kv = load_kv(files, lm, expected=expected, declared=declared)
                    caches.append((item, kv))
                    continue
                except (FingerprintMismatchError, KVCacheError, OSError) as exc:
                    notes.append(f"KV cache of {memory.id} not used: {exc}")
            elif attached:
                notes.append(f"KV cache of {memory.id} not used: a LoRA adapter is attached")
            if text:
                texts.append(text)
                notes.append(f"{memory.id} injected as plaintext instead")
        if recompute is None:
            recompute = getattr(getattr(plan, "budget", None), "recompute", None)
        loaded = _compose_plan(lm, caches, texts, notes, recompute)
        suffix = "+parameter" if attached else ""
        if loaded is not None:
            form = "activation"
            reason = (
                f"plan's {len(loaded.spans)} KV cache(s) injected ({loaded.num_tokens} tokens, "
                f"{loaded.recomputed} recomputed)"
            )
            if texts:
                reason += f", {len(texts)} plaintext memories appended"
        elif texts:
            form, reason = "plaintext", f"{len(texts)} plaintext memories prefilled"
        else:
            form, reason = "none", "the plan holds no usable memory"
        return _run(
            lm, kv=loaded, texts=texts, query=query,
            template=loaded.template if loaded is not None else None,
            max_new_tokens=max_new_tokens, form=form + suffix, reason=reason, notes=notes,
        )  # fmt: skip
    finally:
        if attached:
            detach_adapter(lm)


def _compose_plan(
    lm: LoadedModel,
    caches: list[tuple[Any, LoadedKV]],
    texts: list[str],
    notes: list[str],
    recompute: float | None,
) -> ComposedKV | None:
    """The plan's caches composed; when they cannot be, the first alone and the rest as text."""
    if not caches:
        return None
    budget = DEFAULT_RECOMPUTE if recompute is None else recompute
    try:
        return compose_kv(lm, [kv for _, kv in caches], recompute=budget)
    except KVCacheError as exc:
        notes.append(f"KV caches not composed: [{exc.code}] {exc.message}")
    for item, _kv in caches[1:]:
        memory = item.memory
        notes.append(f"KV cache of {memory.id} not used")
        if memory.memory_type == MemoryType.PLAINTEXT and memory.text:
            texts.append(memory.text)
    return compose_kv(lm, [caches[0][1]])


def _attach_plan_adapter(
    lm: LoadedModel, item: Any, blob_path: Callable[[str], Path] | None, notes: list[str]
) -> bool:
    memory = item.memory
    config_sha = memory.payloads.get(MediaType.LORA_CONFIG.value)
    if blob_path is None or config_sha is None or not item.payload:
        notes.append(f"adapter {memory.id} not attached: its files cannot be located")
        return False
    try:
        attach_adapter(lm, blob_path(config_sha), Path(item.payload), expected=memory.fingerprint)
    except ModelError as exc:
        notes.append(f"adapter {memory.id} not attached: [{exc.code}] {exc.message}")
        return False
    return True
