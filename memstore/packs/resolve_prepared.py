"""Resolve's read as named prepared statements: parsed and planned once per database session.

Why: after the read became one round trip (:mod:`.resolve_read`), PostgreSQL still parsed and
planned its three statements on every resolve: about 0.3 ms of the server's CPU against 0.05 ms
to execute them prepared (issue 17, measured on the bench database), on 2 cores the largest
share left outside Python. Each statement is prepared once per session (``PREPARE``, named
after a digest of its text, so another text is another name), and every resolve sends the
``EXECUTE`` statements, still in one round trip.

A prepared statement belongs to the session, not to a transaction (a rollback keeps it), and
ends with it. A new connection is a new psycopg connection object, so it is asked once what
it holds (``pg_prepared_statements``) and given what it lacks. Not used without persistent
connections (``CONN_MAX_AGE`` 0: the tests' setting; the site's is 60 s), where one session
may not serve the next statement (a pooler in transaction mode; Django's documented sign of
one is ``DISABLE_SERVER_SIDE_CURSORS``), nor with server-side binding (psycopg prepares there
itself). Should the statements be gone anyway (``DISCARD ALL``), :func:`is_missing` tells the
caller, which prepares them again.

Not here: the statements (:mod:`.resolve_read`), anything that could make a read stale: only
the plan is kept, never a row.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["Prepared", "ensure", "forget", "is_missing", "prepared", "usable"]

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
#: psycopg connections known to hold the statements (gone with the connection object).
_ready: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass(frozen=True)
class Prepared:
    names: tuple[str, ...]
    prepare: tuple[str, ...]  # one PREPARE per statement
    execute: str  # the EXECUTEs, with the statements' own %(name)s parameters


@cache
def prepared(statements: tuple[str, ...]) -> Prepared:
    """The PREPARE and EXECUTE forms of ``statements`` (``%(name)s`` parameters)."""
    names, prepare, execute = [], [], []
    for statement in statements:
        order = list(dict.fromkeys(_PLACEHOLDER.findall(statement)))
        body = statement
        for n, param in enumerate(order, start=1):
            body = body.replace(f"%({param})s", f"${n}")
        name = "memstore_" + hashlib.sha256(statement.encode()).hexdigest()[:20]
        names.append(name)
        prepare.append(f"PREPARE {name} AS {body}")
        execute.append(f"EXECUTE {name}({', '.join(f'%({p})s' for p in order)})")
    return Prepared(tuple(names), tuple(prepare), ";\n".join(execute))


def usable(connection: BaseDatabaseWrapper) -> bool:
    """Whether one session serves request after request (see the module docstring)."""
    settings = connection.settings_dict
    if settings.get("CONN_MAX_AGE", 0) == 0:
        return False  # a connection per request: preparing would only add round trips
    options = settings.get("OPTIONS") or {}
    return not options.get("server_side_binding") and not settings.get(
        "DISABLE_SERVER_SIDE_CURSORS"
    )


def ensure(cursor: Any, connection: BaseDatabaseWrapper, statements: Prepared) -> None:
    """Prepare on this session whichever of ``statements`` it does not hold yet."""
    raw = connection.connection
    if raw in _ready:
        return
    cursor.execute(
        "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)", [list(statements.names)]
    )
    held = {row[0] for row in cursor.fetchall()}
    pairs = zip(statements.names, statements.prepare, strict=True)
    missing = [p for n, p in pairs if n not in held]
    if missing:
        cursor.execute(";\n".join(missing))  # no parameters: the text is sent as it is
    _ready.add(raw)


def forget(connection: BaseDatabaseWrapper) -> None:
    """This session's statements are no longer known to be there (ask again next time)."""
    _ready.discard(connection.connection)


def is_missing(error: DatabaseError) -> bool:
    """Whether ``error`` says a prepared statement does not exist (SQLSTATE 26000)."""
    return getattr(error.__cause__, "sqlstate", None) == "26000"
