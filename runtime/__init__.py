"""memos: the MemOS runtime — install packs, local memory engine, SDK and CLI."""
