"""Which formats ``memos import --from`` and ``memos export --to`` know, and the two verbs.

An importer reads a source path into :class:`PortableMemory` objects (refusing
bad input with an ``interop.*`` code); an exporter writes them to a path and
reports what the target cannot carry. :func:`import_to_pack` and
:func:`export_memories` are what the CLI calls.

Not here: the formats themselves (one module each), packing (:mod:`.packer`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from protocol import PublicKey, SigningKey

from ..engine.interfaces import Embedder
from ..errors import InteropError
from . import amp, cognee, letta, mcp_memory, mem0, memos_cube
from .model import ExportReport, ImportResult, PortableMemory, Skipped
from .packer import write_pack

__all__ = ["EXPORTERS", "IMPORTERS", "ImportOptions", "export_memories", "import_to_pack"]


@dataclass(frozen=True)
class ImportOptions:
    with_messages: bool = False  # letta: import the conversation too
    skip_pickled: bool = False  # memos: import the text, leave a pickled activation memory
    trusted_keys: Sequence[PublicKey] = ()  # amp: publishers whose signature is accepted


@dataclass
class Read:
    memories: list[PortableMemory]
    skipped: list[Skipped] = field(default_factory=list)


Importer = Callable[[Path, ImportOptions], Read]
Exporter = Callable[[Sequence[PortableMemory], Path, SigningKey | None], ExportReport]

IMPORTERS: dict[str, tuple[str, Importer]] = {
    "mem0": (mem0.SYSTEM, lambda p, o: Read(mem0.read_mem0(p))),
    "mcp-memory": (mcp_memory.SYSTEM, lambda p, o: Read(mcp_memory.read_mcp_memory(p))),
    "cogx": (cognee.SYSTEM, lambda p, o: Read(cognee.read_cogx(p))),
    "memos": (memos_cube.SYSTEM, lambda p, o: Read(*memos_cube.read_cube(p, o.skip_pickled))),
    "letta": (letta.SYSTEM, lambda p, o: Read(*letta.read_agent_file(p, o.with_messages))),
    "amp": (amp.SYSTEM, lambda p, o: Read(amp.read_amp(p, o.trusted_keys))),
}

EXPORTERS: dict[str, Exporter] = {
    "mem0": lambda m, out, key: mem0.export_mem0(m, out),
    "mcp-memory": lambda m, out, key: mcp_memory.export_mcp_memory(m, out),
    "cogx": lambda m, out, key: cognee.export_cogx(m, out),
    "amp": amp.export_amp,
}


def _unknown(fmt: str, known: Sequence[str]) -> InteropError:
    return InteropError(
        f"unknown format {fmt!r}; use one of: {', '.join(known)}",
        code="interop.unknown_format",
        format=fmt,
    )


def import_to_pack(
    fmt: str,
    source: Path,
    out: Path,
    *,
    name: str,
    key: SigningKey,
    version: str = "1.0.0",
    options: ImportOptions | None = None,
    embedder: Embedder | None = None,
) -> ImportResult:
    """Read ``source`` in format ``fmt`` and write a signed pack ``out``."""
    if fmt not in IMPORTERS:
        raise _unknown(fmt, sorted(IMPORTERS))
    if not source.exists():
        raise InteropError(f"{source} does not exist", code="interop.not_found")
    system, importer = IMPORTERS[fmt]
    read = importer(source, options or ImportOptions())
    write_pack(
        read.memories, out, name=name, key=key, system=system, version=version,
        embedder=embedder,
    )  # fmt: skip
    return ImportResult(str(out), name, version, system, len(read.memories), read.skipped)


def export_memories(
    fmt: str, memories: Sequence[PortableMemory], out: Path, *, key: SigningKey | None = None
) -> ExportReport:
    if fmt not in EXPORTERS:
        raise _unknown(fmt, sorted(EXPORTERS))
    if not memories:
        raise InteropError("nothing to export: no memories you may read", code="interop.empty")
    return EXPORTERS[fmt](memories, out, key)
