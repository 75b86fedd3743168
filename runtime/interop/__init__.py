"""Import from and export to other memory systems: Mem0/OpenMemory, Letta, Cognee, MemOS,
the MCP memory server and MemoryMarket AMP.

``memos import --from FORMAT SOURCE`` reads another system's export into a
signed MIP pack; ``memos export --to FORMAT`` writes an installed pack or a
``.memcube`` in another system's format and reports what it cannot carry.
Every memory's provenance names the source system and its original id.

Not here: the command line (:mod:`runtime.cli.interop_cmds`).
"""

from __future__ import annotations

from .formats import EXPORTERS, IMPORTERS, ImportOptions, export_memories, import_to_pack
from .model import PROVENANCE_KEY, ExportReport, ImportResult, PortableMemory, Skipped
from .source import from_installed, from_pack_file

__all__ = [
    "EXPORTERS",
    "IMPORTERS",
    "PROVENANCE_KEY",
    "ExportReport",
    "ImportOptions",
    "ImportResult",
    "PortableMemory",
    "Skipped",
    "export_memories",
    "from_installed",
    "from_pack_file",
    "import_to_pack",
]
