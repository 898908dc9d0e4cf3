"""PostgreSQL connection pools for stateful services.

A service that keeps state opens one pool at start (failing closed when no database is
configured) and reports readiness only while the database answers. A database that is down or
still starting when the service starts is an outage like any other: the start waits and retries
instead of exiting, so a restart during a PostgreSQL restart does not need an orchestrator.
"""

from __future__ import annotations

import asyncio

import asyncpg

from shared.logging import get_logger
from shared.poison import is_outage
from shared.settings import ServiceSettings

log = get_logger(__name__)
CONNECT_BACKOFF_MAX_S = 10.0


async def create_pool(settings: ServiceSettings, *, min_size: int = 1) -> asyncpg.Pool:
    """A pool sized by ``database_pool_max``, tagged with the service name in ``pg_stat_activity``.

    Raises ``ValueError`` when ``MILLRACE_DATABASE_URL`` is unset: a stateful service must not
    start without its database. While the database is unreachable (an outage, see
    :func:`shared.poison.is_outage`) it retries with capped exponential backoff; any other error
    (a wrong password, an unknown database) is configuration and raises at once.
    """
    if settings.database_url is None:
        raise ValueError(f"{settings.service_name} needs MILLRACE_DATABASE_URL")
    backoff = 0.25
    while True:
        try:
            return await asyncpg.create_pool(
                settings.database_url.get_secret_value(),
                min_size=min(min_size, settings.database_pool_max),
                max_size=settings.database_pool_max,
                server_settings={"application_name": f"millrace-{settings.service_name}"},
            )
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning(
                "database unavailable at start; retrying", error=repr(exc), backoff_s=backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, CONNECT_BACKOFF_MAX_S)


async def db_ready(pool: asyncpg.Pool, timeout_s: float = 2.0) -> bool:
    """True when a pooled connection answers ``SELECT 1`` within ``timeout_s``.

    Used by ``/readyz``: an unreachable database makes the replica unready, not crashed.
    """
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT 1") == 1)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
