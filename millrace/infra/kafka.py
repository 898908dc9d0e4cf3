"""A single-node Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1, no Docker.

The jars come from Maven Central (:mod:`millrace.infra.kafka_jars`); storage is formatted
on first start; the JVM runs detached with its pid, log and data under the state dir.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from millrace.infra import process
from millrace.infra.kafka_jars import KAFKA_ASSETS, ensure_jars
from millrace.infra.kafka_secure import (
    ADMIN_USER,
    MECHANISM,
    SecureLayout,
    format_arguments,
    grant_access,
    secure_properties,
)
from millrace.infra.process import InfraError, ServerStatus
from millrace.infra.tls import write_private

MAIN_CLASS = "kafka.Kafka"
HEAP = ("-Xms1g", "-Xmx1g")
# What kafka-server-start.sh passes (KAFKA_JVM_PERFORMANCE_OPTS): without a pause target, G1
# aims at 200 ms, and the broker's young collections showed up as arrival spikes of that order.
JVM_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)


@dataclass(frozen=True)
class KafkaConfig:
    """Where the broker keeps its files and which loopback ports it listens on."""

    home: Path
    port: int = 19092
    controller_port: int = 19093
    tied_to_caller: bool = False
    """Stop the broker when the starting process dies (tests); ``infra up`` leaves it running."""
    secure: bool = False
    """SASL_SSL with SCRAM-SHA-512 and the KafkaUser ACLs (:mod:`millrace.infra.kafka_secure`)."""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def server_properties(cfg: KafkaConfig, overrides: dict[str, str] | None = None) -> str:
    """Broker config: one node, loopback only, topics only from the manifest, fast groups;
    ``overrides`` (the secure listeners) replace or add keys."""
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cfg.controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{cfg.port},CONTROLLER://127.0.0.1:{cfg.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{cfg.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(cfg.home / "data"),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    lines.update(overrides or {})
    return "".join(f"{k}={v}\n" for k, v in lines.items())


class LocalKafka:
    """Start, stop and inspect the local broker; safe to call from any shell or test."""

    def __init__(self, cfg: KafkaConfig) -> None:
        self.cfg = cfg
        self.log = cfg.home / "kafka.log"
        self.pid_file = cfg.home / "kafka.pid"
        self.endpoint_file = cfg.home / "endpoint.json"
        self.properties = cfg.home / "server.properties"
        self.secure = SecureLayout(cfg.home)
        self.mode_file = cfg.home / "security-protocol"

    def status(self) -> ServerStatus:
        pid = process.read_pid(self.pid_file, MAIN_CLASS)
        endpoint = None
        if pid is not None and self.endpoint_file.is_file():
            endpoint = str(json.loads(self.endpoint_file.read_text())["bootstrap"])
        return ServerStatus("kafka", pid, endpoint, self.log)

    def client_env(self) -> dict[str, str]:
        """The ``MILLRACE_KAFKA_*`` settings a client of the running broker needs, less the
        principal: bootstrap, and with security the protocol, mechanism and CA file."""
        if not self.endpoint_file.is_file():
            return {}
        endpoint = json.loads(self.endpoint_file.read_text())
        env = endpoint.get("client_env") or {"MILLRACE_KAFKA_BOOTSTRAP": endpoint["bootstrap"]}
        return {str(k): str(v) for k, v in env.items()}

    def principals(self) -> dict[str, Path]:
        """Each principal of a secure broker and its password file (empty when plaintext)."""
        if not self.secure.users_dir.is_dir():
            return {}
        return {
            d.name: self.secure.password_file(d.name)
            for d in sorted(self.secure.users_dir.iterdir())
            if self.secure.password_file(d.name).is_file()
        }

    def start(self, timeout_s: float = 120.0, out: TextIO = sys.stderr) -> str:
        """Start the broker unless it runs already; return its bootstrap address once it
        answers an admin request."""
        current = self.status()
        if current.running and current.endpoint:
            running = self.client_env().get("MILLRACE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
            if running != self._protocol():
                raise InfraError(
                    f"the local broker already runs with {running}, not {self._protocol()}; "
                    "stop it first (millrace infra down)"
                )
            return current.endpoint
        process.ensure_ports_free(
            "Kafka broker", {"broker": self.cfg.port, "controller": self.cfg.controller_port}
        )
        java = shutil.which("java")
        if java is None:
            raise InfraError("a Java runtime (17+) is needed for the local Kafka broker")
        libs = ensure_jars(out=out)
        self.cfg.home.mkdir(parents=True, exist_ok=True)
        self._check_existing_data()
        overrides = None
        if self.cfg.secure:
            overrides = secure_properties(self.secure, self.cfg.port, self.cfg.controller_port)
        # 0600: with security on, the file holds the admin's password
        write_private(self.properties, server_properties(self.cfg, overrides).encode())
        classpath = f"{libs}/*"
        self._format_once(java, classpath)
        argv = [
            java, *HEAP, *JVM_OPTS,
            f"-Dlog4j2.configurationFile={KAFKA_ASSETS / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.cfg.home / 'logs'}",
            "-cp", classpath, MAIN_CLASS, str(self.properties),
        ]  # fmt: skip
        death_signal = signal.SIGTERM if self.cfg.tied_to_caller else None
        proc = process.spawn_detached(argv, self.log, cwd=self.cfg.home, death_signal=death_signal)
        self.pid_file.write_text(f"{proc.pid}\n")
        endpoint = {"bootstrap": self.cfg.bootstrap, "client_env": self._env()}
        self.endpoint_file.write_text(json.dumps(endpoint))
        security = self.secure.admin_security() if self.cfg.secure else {}
        try:
            process.wait_ready(
                "kafka",
                probe=lambda: process.run_async(lambda: admin_ready(self.cfg.bootstrap, security)),
                alive=lambda: proc.poll() is None,
                log=self.log,
                timeout_s=timeout_s,
            )
            if self.cfg.secure:
                summary = process.run_async(lambda: grant_access(self.secure, self.cfg.bootstrap))
                print(f"kafka: {summary}", file=out)
        except InfraError:
            process.stop_group(proc.pid, timeout_s=5.0)
            proc.wait()
            raise
        return self.cfg.bootstrap

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker's whole process group; True if one was running."""
        pid = process.read_pid(self.pid_file, MAIN_CLASS)
        if pid is not None:
            process.stop_group(pid, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None

    def _protocol(self) -> str:
        return "SASL_SSL" if self.cfg.secure else "PLAINTEXT"

    def _env(self) -> dict[str, str]:
        env = {"MILLRACE_KAFKA_BOOTSTRAP": self.cfg.bootstrap}
        if self.cfg.secure:
            env |= {
                "MILLRACE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "MILLRACE_KAFKA_SASL_MECHANISM": MECHANISM,
                "MILLRACE_KAFKA_SSL_CAFILE": str(self.secure.ca_cert),
            }
        return env

    def _check_existing_data(self) -> None:
        """Refuse data made in the other security mode (a plaintext broker's storage has no
        admin credential, a secure one has no open listener), or secure data whose admin
        password file is gone (a new one would not match the credential in the storage)."""
        data = self.cfg.home / "data"
        if not (data / "meta.properties").is_file():
            return
        made = self.mode_file.read_text().strip() if self.mode_file.is_file() else "PLAINTEXT"
        if made != self._protocol():
            problem = f"it was made for {made}, not {self._protocol()}"
        elif self.cfg.secure and not self.secure.password_file(ADMIN_USER).is_file():
            problem = "its admin password file is gone"
        else:
            return
        raise InfraError(
            f"cannot use the Kafka data in {data}: {problem}; stop the broker and delete "
            f"{self.cfg.home} (or use another MILLRACE_STATE_DIR)"
        )

    def _format_once(self, java: str, classpath: str) -> None:
        protocol = self._protocol()
        if (self.cfg.home / "data" / "meta.properties").is_file():
            return
        extra = format_arguments(self.secure) if self.cfg.secure else []
        argv = [
            java, "-Xmx256m", "-cp", classpath, "kafka.tools.StorageTool", "format",
            "-t", cluster_id(), "-c", str(self.properties), *extra,
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise InfraError(f"formatting Kafka storage failed:\n{done.stdout}\n{done.stderr}")
        self.mode_file.write_text(f"{protocol}\n")


def cluster_id() -> str:
    """A random cluster id in Kafka's format: a UUID as unpadded URL-safe base64.

    Like Kafka's own ``Uuid.randomUuid``, never one starting with ``-``: the storage tool
    would parse it as an option and fail with an empty cluster id (1 start in 64).
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


async def admin_ready(
    bootstrap: str, security: dict[str, Any] | None = None, timeout_s: float = 5.0
) -> bool:
    """True when the broker answers a metadata request through the admin API (as the client
    ``security`` describes, by default plaintext)."""
    if not process.port_open(bootstrap):
        return False
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=3000, **(security or {})
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            await admin.list_topics()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return True
