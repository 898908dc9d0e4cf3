"""Plain-SQL schema migrations, one PostgreSQL schema per service.

A service keeps ``NNNN_name.sql`` files in its ``migrations`` package. :func:`migrate` applies
the pending ones in version order, each in its own transaction with ``search_path`` set to
the service's schema (so files use unqualified names), and records them in
``<schema>.schema_migrations``. Every transaction first takes a transaction-scoped advisory
lock derived from the schema name, so replicas starting together apply each file once.
A file whose checksum differs from the applied one stops the run: history is never rewritten,
a fix is a new file. Versions in the table that this code does not know are tolerated, so an
older replica keeps running during a rolling upgrade.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Identifiers cannot be bind parameters; a schema name is checked against this before use.
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
LOCK_NAMESPACE = "millrace.migrations:"


Conn = asyncpg.Connection | PoolConnectionProxy


class MigrationError(RuntimeError):
    """Migrations cannot be applied safely; the service must not start."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str


def load(source: str | Path) -> list[Migration]:
    """Migrations from a package (``"services.orders.migrations"``) or a directory, in order.

    Files not named ``NNNN_name.sql`` are ignored; a duplicate version is an error.
    """
    root: Traversable = resources.files(source) if isinstance(source, str) else source
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        match = FILE_NAME.match(entry.name)
        if not match or not entry.is_file():
            continue
        raw = entry.read_bytes()
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations with version {version:04d} in {source}")
        found[version] = Migration(
            version=version,
            name=match.group(2),
            sql=raw.decode("utf-8"),
            checksum=hashlib.sha256(raw).hexdigest(),
        )
    return [found[v] for v in sorted(found)]


async def migrate(conn: Conn, schema: str, migrations: list[Migration]) -> list[Migration]:
    """Apply the pending ``migrations`` to ``schema``; return those this call applied."""
    if not SCHEMA_NAME.match(schema):
        raise MigrationError(f"invalid schema name {schema!r}")
    applied: list[Migration] = []
    for migration in migrations:
        async with conn.transaction():
            done = await _lock_and_read(conn, schema)
            _verify(schema, migrations, done)
            if migration.version in done:
                continue
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            await conn.execute(migration.sql)
            await conn.execute(
                f'INSERT INTO "{schema}".schema_migrations (version, name, checksum) '  # noqa: S608
                "VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied.append(migration)
    if not migrations:
        async with conn.transaction():
            _verify(schema, migrations, await _lock_and_read(conn, schema))
    return applied


async def migrate_pool(pool: asyncpg.Pool, schema: str, source: str | Path) -> list[Migration]:
    """Load migrations from ``source`` and apply them on one pooled connection."""
    migrations = load(source)
    async with pool.acquire() as conn:
        return await migrate(conn, schema, migrations)


async def _lock_and_read(conn: Conn, schema: str) -> dict[int, str]:
    """Serialise with other runners on this schema, then read what is applied.

    The lock is taken before ``CREATE SCHEMA``/``CREATE TABLE`` so that even creating the
    bookkeeping table cannot race.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", LOCK_NAMESPACE + schema
    )
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    table = f'"{schema}".schema_migrations'
    rows = await conn.fetch(f"SELECT version, checksum FROM {table}")  # noqa: S608
    return {int(r["version"]): str(r["checksum"]) for r in rows}


def _verify(schema: str, migrations: list[Migration], done: dict[int, str]) -> None:
    for migration in migrations:
        recorded = done.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} in schema {schema} was "
                "changed after it was applied; add a new migration instead"
            )
