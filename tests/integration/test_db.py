"""Connection pools and the migration runner, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from millrace.infra.process import free_port
from shared.db import create_pool, db_ready
from shared.migrations import MigrationError, load, migrate
from shared.settings import ServiceSettings


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def write(folder: Path, name: str, sql: str) -> None:
    (folder / name).write_text(sql)


async def applied_rows(conn: asyncpg.Connection, schema: str) -> list[tuple[int, str]]:
    rows = await conn.fetch(f"SELECT version, name FROM {schema}.schema_migrations ORDER BY 1")
    return [(r["version"], r["name"]) for r in rows]


async def test_pool_is_ready_until_closed(database_url: str) -> None:
    settings = ServiceSettings(service_name="dbtest", database_url=database_url)
    pool = await create_pool(settings)
    try:
        assert await db_ready(pool)
        async with pool.acquire() as c:
            name = await c.fetchval(
                "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            )
        assert name == "millrace-dbtest"
    finally:
        await pool.close()
    assert not await db_ready(pool)


async def test_pool_refuses_to_start_without_a_database() -> None:
    with pytest.raises(ValueError, match="MILLRACE_DATABASE_URL"):
        await create_pool(ServiceSettings(service_name="dbtest"))


async def test_applies_in_version_order_into_the_service_schema(
    conn: asyncpg.Connection, schema: str, tmp_path: Path
) -> None:
    write(tmp_path, "0010_add_note.sql", "ALTER TABLE orders ADD COLUMN note text;")
    write(tmp_path, "0002_create_orders.sql", "CREATE TABLE orders (id text PRIMARY KEY);")
    write(tmp_path, "0011_seed.sql", "INSERT INTO orders VALUES ('o-1', 'first');")
    write(tmp_path, "README.md", "not a migration")

    applied = await migrate(conn, schema, load(tmp_path))

    assert [m.version for m in applied] == [2, 10, 11]
    assert await applied_rows(conn, schema) == [
        (2, "create_orders"),
        (10, "add_note"),
        (11, "seed"),
    ]
    assert await conn.fetchval(f"SELECT note FROM {schema}.orders WHERE id = 'o-1'") == "first"


async def test_rerun_is_a_no_op_and_new_files_apply_alone(
    conn: asyncpg.Connection, schema: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_create.sql", "CREATE TABLE items (id int PRIMARY KEY);")
    await migrate(conn, schema, load(tmp_path))

    assert await migrate(conn, schema, load(tmp_path)) == []

    write(tmp_path, "0002_seed.sql", "INSERT INTO items VALUES (1);")
    assert [m.name for m in await migrate(conn, schema, load(tmp_path))] == ["seed"]
    assert await conn.fetchval(f"SELECT count(*) FROM {schema}.items") == 1


async def test_changed_applied_file_is_refused_before_anything_runs(
    conn: asyncpg.Connection, schema: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_create.sql", "CREATE TABLE items (id int PRIMARY KEY);")
    await migrate(conn, schema, load(tmp_path))
    write(tmp_path, "0001_create.sql", "CREATE TABLE items (id bigint PRIMARY KEY);")
    write(tmp_path, "0002_more.sql", "CREATE TABLE more (id int);")

    with pytest.raises(MigrationError, match="0001_create"):
        await migrate(conn, schema, load(tmp_path))

    assert await applied_rows(conn, schema) == [(1, "create")]
    assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.more") is None


async def test_failed_migration_rolls_back_and_stops(
    conn: asyncpg.Connection, schema: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_ok.sql", "CREATE TABLE a (id int);")
    write(tmp_path, "0002_broken.sql", "CREATE TABLE b (id int); SELECT * FROM missing_table;")
    write(tmp_path, "0003_after.sql", "CREATE TABLE c (id int);")

    with pytest.raises(asyncpg.UndefinedTableError):
        await migrate(conn, schema, load(tmp_path))

    assert await applied_rows(conn, schema) == [(1, "ok")]
    assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.b") is None
    assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.c") is None


async def test_concurrent_runners_apply_each_file_once(
    database_url: str, schema: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_slow.sql", "SELECT pg_sleep(0.3); CREATE TABLE runs (n int);")
    write(tmp_path, "0002_count.sql", "INSERT INTO runs VALUES (1);")
    migrations = load(tmp_path)
    conns = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, schema, migrations) for c in conns))
        assert sorted(m.version for applied in results for m in applied) == [1, 2]
        assert await conns[0].fetchval(f"SELECT count(*) FROM {schema}.runs") == 1
    finally:
        for c in conns:
            await c.close()


async def test_invalid_schema_name_is_refused(conn: asyncpg.Connection) -> None:
    with pytest.raises(MigrationError, match="invalid schema"):
        await migrate(conn, 'x"; DROP TABLE y; --', [])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def test_pool_waits_for_a_database_that_is_not_up_yet(database_url: str) -> None:
    """A service started during a PostgreSQL outage waits for it instead of exiting: the pool
    is asked for on a port nobody listens on yet, then a proxy to the real server opens there."""
    real = urlsplit(database_url)
    port = free_port()
    proxied = urlunsplit(real._replace(netloc=real.netloc.replace(f":{real.port}", f":{port}")))
    settings = ServiceSettings(service_name="dbtest", database_url=proxied)
    starting = asyncio.create_task(create_pool(settings))
    await asyncio.sleep(1.5)
    assert not starting.done(), "create_pool gave up while the database was unreachable"

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(real.hostname, real.port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", port)
    try:
        pool = await asyncio.wait_for(starting, 30)
        try:
            assert await db_ready(pool)
        finally:
            await pool.close()
    finally:
        server.close()


async def test_pool_refuses_a_wrong_password_at_once(database_url: str) -> None:
    real = urlsplit(database_url)
    user = real.username or "postgres"
    wrong = urlunsplit(real._replace(netloc=f"{user}:wrong-password@{real.hostname}:{real.port}"))
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncio.wait_for(
            create_pool(ServiceSettings(service_name="dbtest", database_url=wrong)), 20
        )
