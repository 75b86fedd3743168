#!/usr/bin/env python
"""Django's command-line utility for the MemStore registry.

Without ``DATABASE_URL`` it starts (or joins) the embedded PostgreSQL in
``$MEMSTORE_DATA_DIR/pg`` first, so every command works on a fresh machine.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")
    from server.config import load_config
    from server.embedded import ensure_database_url

    if not os.environ.get("DATABASE_URL") and "help" not in sys.argv[1:2]:
        # memstore_up owns the embedded server: it stops with it (other commands join it).
        keep = "memstore_up" not in sys.argv[1:2]
        ensure_database_url(load_config().data_dir, keep_running=keep)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
