"""Extracting a pack without touching anything outside its target, or leaving half a pack.

:class:`Extraction` accepts a target that is missing or an empty directory.
Every member is written into a private ``.mip-partial`` folder inside it,
created exclusively and without following links, and checked to stay inside;
:meth:`Extraction.commit` moves the files into place once the whole pack has
been checked, and :meth:`Extraction.abort` removes the partial folder and any
folder this read created, so a failed read leaves the target as it was.

Not here: deciding what may be written (:mod:`protocol._pack_reader`,
:mod:`protocol._pack_members`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from .errors import ArchiveError

__all__ = ["Extraction"]

_PARTIAL = ".mip-partial"


class Extraction:
    """Owns the private partial folder inside the target; all writes go through it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        # The folders this read creates (the target and missing parents), so that
        # a failed read removes exactly what it made and nothing else.
        self.created: list[Path] = []
        probe = target
        while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
            self.created.append(probe)
            probe = probe.parent
        if not self.created:
            if not target.is_dir() or target.is_symlink():
                raise ArchiveError(f"{target} is not a directory", code="archive.target_not_empty")
            if any(target.iterdir()):
                raise ArchiveError(f"{target} is not empty", code="archive.target_not_empty")
        target.mkdir(parents=True, exist_ok=True)
        self.partial = target / _PARTIAL
        self.partial.mkdir()

    def open(self, name: str) -> BinaryIO:
        path = self.partial / name
        path.parent.mkdir(parents=True, exist_ok=True)
        resolved = path.parent.resolve()
        if not resolved.is_relative_to(self.partial.resolve()):  # defence in depth
            raise ArchiveError(f"member {name!r} escapes the target", code="archive.path_traversal")
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644
        )
        return os.fdopen(fd, "wb")

    def commit(self) -> None:
        for entry in sorted(self.partial.iterdir()):
            os.replace(entry, self.target / entry.name)
        self.partial.rmdir()

    @property
    def created_target(self) -> bool:
        return bool(self.created)

    def abort(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)
        if self.created:
            shutil.rmtree(self.created[-1], ignore_errors=True)
