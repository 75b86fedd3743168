"""``manage.py tuf_init --root-key FILE [--root-key FILE ...] [--threshold N]``: root v1.

The root keys are offline: give their private key files here (an air-gapped
machine, a hardware token's export), keep them away from the web hosts. With
``--generate DIR`` new root key files are written there first. ``--rotate``
makes a new root version signed by the current root keys (``--old-key``) and
the new ones instead. Not here: the online key (``MEMSTORE_TUF_ONLINE_KEY``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...keys import generate_key_file, load_signer
from ...services import repository_init, root_rotate


class Command(BaseCommand):
    help = "Create (or rotate) the registry's TUF root from offline root key files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--root-key", action="append", default=[], type=Path)
        parser.add_argument("--threshold", type=int, default=1)
        parser.add_argument("--generate", type=Path, help="write N new root keys here first")
        parser.add_argument("--rotate", action="store_true")
        parser.add_argument("--old-key", action="append", default=[], type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        paths: list[Path] = list(options["root_key"])
        if options["generate"] is not None:
            folder: Path = options["generate"]
            paths += [generate_key_file(folder / f"root-{i}.pem")
                      for i in range(max(1, options["threshold"]))]  # fmt: skip
        if not paths:
            self.stderr.write("give --root-key FILE (or --generate DIR)")
            raise SystemExit(2)
        signers = [load_signer(p) for p in paths]
        if options["rotate"]:
            old = [load_signer(p) for p in options["old_key"]]
            version = root_rotate(
                old_signers=old, new_signers=signers, threshold=options["threshold"]
            )
            self.stdout.write(f"root version {version} signed")
            return
        repository_init(root_signers=signers, threshold=options["threshold"])
        self.stdout.write("TUF repository created (root version 1)")
