"""Everything a resolve reads, in one round trip: the pack, its versions, the namespace's keys.

Why: on 2 cores at 300 resolves/s each query was a round trip to PostgreSQL plus the ORM
compiling it (issue 17): the pack, its versions with their ingest status, the download rule
and the namespace's keys were four queries, about half of a resolve's CPU. Here they are three
statements sent in one ``execute`` (psycopg's client-side binding, Django's default, runs them
in one round trip and :meth:`nextset` walks the answers), prepared once per database session
(:mod:`.resolve_prepared`), written once per process from the models' own columns; the rows
become model instances the way the ORM's ``select_related`` would make them (the version's
pack and ingest job attached, nothing fetched lazily). No row is cached: every request reads
them as they are now, so a yank, a deletion, a new version, a key revocation or a price
change shows on the next resolve.

The version rows leave out the manifest and the description (deferred, as before): only the
chosen version's manifest is read, once per process (:mod:`.resolve_body`).
Not here: who may resolve what (:mod:`.selectors`), the answer's bytes (:mod:`.resolve_body`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import DatabaseError, connection
from django.db.models import Model

from ..accounts.models import Namespace, SigningKey
from . import resolve_prepared
from .models import Pack, PackVersion

__all__ = ["Candidate", "ResolveRows", "resolve_rows"]

#: Version columns a resolve does not read (the chosen version's manifest is read on its own).
_DEFERRED = frozenset({"manifest", "manifest_bytes", "description"})


class Candidate:
    """A version's row, with what choosing among versions reads; :meth:`model` for the rest.

    Only the chosen one becomes a :class:`PackVersion` (with its pack and ingest job
    attached): building a model instance for each candidate on each request cost more than
    the choice itself.
    """

    __slots__ = ("_pack", "_row", "deleted_at", "version", "yanked")

    def __init__(self, row: tuple[Any, ...], pack: Pack, plan: _Plan) -> None:
        self._row, self._pack = row, pack
        self.version: str = row[plan.at_version]
        self.deleted_at: datetime | None = row[plan.at_deleted]
        self.yanked: bool = row[plan.at_yanked]

    def model(self) -> PackVersion:
        plan = _plan()
        n_v = len(plan.version)
        version: PackVersion = _build(PackVersion, plan.version, self._row[:n_v])
        PackVersion.pack.field.set_cached_value(version, self._pack)
        job_values = self._row[n_v:]
        job = None
        if job_values[plan.at_job_pk] is not None:
            job = _build(plan.job_model, plan.job, job_values)
        PackVersion.ingest.related.set_cached_value(version, job)
        return version


_JOB_SHOWN = frozenset(
    {"id", "version_id", "status", "attempts", "error", "memory_count", "progress"}
)


@dataclass(frozen=True)
class ResolveRows:
    pack: Pack  # its namespace attached
    candidates: list[Candidate]  # every version, deleted ones included
    keys: list[SigningKey]  # every key the namespace registered, oldest first (namespace_keys)


def _columns(model: type[Model], skip: frozenset[str] = frozenset()) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if f.name not in skip]


def _select(model: type[Model], alias: str, names: list[str]) -> str:
    by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
    return ", ".join(f'{alias}."{by_attname[n]}"' for n in names)


@dataclass(frozen=True)
class _Plan:
    statements: tuple[str, str, str]
    namespace: list[str]
    pack: list[str]
    version: list[str]
    job_model: type[Model]
    job: list[str]
    key: list[str]
    at_version: int  # where in a version's row its version string is, and so on
    at_deleted: int
    at_yanked: int
    at_job_pk: int  # in the job's part of the row (None: no job yet)

    @property
    def sql(self) -> str:
        return ";\n".join(self.statements)


@cache
def _plan() -> _Plan:
    """The statements, with the models' own tables and columns (written once per process)."""
    job_model = PackVersion.ingest.related.related_model  # the ingest app's job, by relation
    ns_cols = _columns(Namespace)
    pack_cols = _columns(Pack)
    version_cols = _columns(PackVersion, _DEFERRED)
    # What the answer shows of the job (:func:`.presenters.ingest_dict`), not its lease and
    # timestamps: fewer values to decode for each candidate; the rest are deferred fields.
    job_cols = [f for f in _columns(job_model) if f in _JOB_SHOWN]
    key_cols = _columns(SigningKey)
    ns_t, pack_t = Namespace._meta.db_table, Pack._meta.db_table
    version_t, job_t = PackVersion._meta.db_table, job_model._meta.db_table
    key_t = SigningKey._meta.db_table
    job_fk = PackVersion.ingest.related.field.column
    # Table and column names from the models, values as parameters (hence the noqa: S608).
    pack_id = f"""(SELECT p."id" FROM {ns_t} n JOIN {pack_t} p ON p."namespace_id" = n."id"
        WHERE n."name" = %(ns)s AND p."name" = %(name)s)"""  # noqa: S608
    pack_sql = f"""SELECT {_select(Namespace, "n", ns_cols)}, {_select(Pack, "p", pack_cols)}
        FROM {ns_t} n JOIN {pack_t} p ON p."namespace_id" = n."id"
        WHERE n."name" = %(ns)s AND p."name" = %(name)s"""  # noqa: S608
    versions_sql = f"""SELECT {_select(PackVersion, "v", version_cols)},
        {_select(job_model, "j", job_cols)}
        FROM {version_t} v LEFT JOIN {job_t} j ON j."{job_fk}" = v."id"
        WHERE v."pack_id" = {pack_id}"""  # noqa: S608
    keys_sql = f"""SELECT {_select(SigningKey, "k", key_cols)} FROM {key_t} k
        WHERE k."namespace_id" = (SELECT n."id" FROM {ns_t} n WHERE n."name" = %(ns)s)
        ORDER BY k."created_at", k."id" """  # noqa: S608
    statements = (pack_sql, versions_sql, keys_sql)
    return _Plan(
        statements, ns_cols, pack_cols, version_cols, job_model, job_cols, key_cols,
        at_version=version_cols.index("version"),
        at_deleted=version_cols.index("deleted_at"),
        at_yanked=version_cols.index("yanked"),
        at_job_pk=job_cols.index(job_model._meta.pk.attname),
    )  # fmt: skip


def _build(model: type[Model], names: list[str], values: tuple[Any, ...]) -> Any:
    return model.from_db(connection.alias, names, values)


def _execute(cursor: Any, plan: _Plan, params: dict[str, str]) -> None:
    """The three statements in one execute: prepared ones where the session allows it."""
    if not resolve_prepared.usable(connection):
        cursor.execute(plan.sql, params)
        return
    statements = resolve_prepared.prepared(plan.statements)
    resolve_prepared.ensure(cursor, connection, statements)
    try:
        cursor.execute(statements.execute, params)
    except DatabaseError as exc:
        # Gone from the session (DISCARD ALL): prepare again and retry, where a failed
        # statement has not spoilt a transaction.
        if not resolve_prepared.is_missing(exc) or connection.in_atomic_block:
            raise
        resolve_prepared.forget(connection)
        resolve_prepared.ensure(cursor, connection, statements)
        cursor.execute(statements.execute, params)


def resolve_rows(*, namespace: str, name: str) -> ResolveRows | None:
    """The pack ``namespace/name`` with its versions and keys, as they are now; None if none."""
    plan = _plan()
    params = {"ns": namespace, "name": name}
    with connection.cursor() as cursor:
        if connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
            # Server-side binding takes one statement per execute: three round trips.
            answers = []
            for statement in plan.statements:
                cursor.execute(statement, params)
                answers.append(cursor.fetchall())
            head = answers[0][0] if answers[0] else None
            version_rows, key_rows = answers[1], answers[2]
        else:
            _execute(cursor, plan, params)
            head = cursor.fetchone()
            cursor.nextset()
            version_rows = cursor.fetchall()
            cursor.nextset()
            key_rows = cursor.fetchall()
    if head is None:
        return None
    n_ns = len(plan.namespace)
    ns = _build(Namespace, plan.namespace, head[:n_ns])
    pack = _build(Pack, plan.pack, head[n_ns:])
    Pack.namespace.field.set_cached_value(pack, ns)
    candidates = [Candidate(row, pack, plan) for row in version_rows]
    keys = [_build(SigningKey, plan.key, row) for row in key_rows]
    return ResolveRows(pack=pack, candidates=candidates, keys=keys)
