"""PostgreSQL connection pools for stateful services.

A service that keeps state opens one pool at start (failing closed when no database is
configured) and reports readiness only while the database answers.
"""

from __future__ import annotations

import asyncio

import asyncpg

from shared.settings import ServiceSettings


async def create_pool(settings: ServiceSettings, *, min_size: int = 1) -> asyncpg.Pool:
    """A pool sized by ``database_pool_max``, tagged with the service name in ``pg_stat_activity``.

    Raises ``ValueError`` when ``MILLRACE_DATABASE_URL`` is unset: a stateful service must not
    start without its database.
    """
    if settings.database_url is None:
        raise ValueError(f"{settings.service_name} needs MILLRACE_DATABASE_URL")
    return await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=min(min_size, settings.database_pool_max),
        max_size=settings.database_pool_max,
        server_settings={"application_name": f"millrace-{settings.service_name}"},
    )


async def db_ready(pool: asyncpg.Pool, timeout_s: float = 2.0) -> bool:
    """True when a pooled connection answers ``SELECT 1`` within ``timeout_s``.

    Used by ``/readyz``: an unreachable database makes the replica unready, not crashed.
    """
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT 1") == 1)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
