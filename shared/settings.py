"""Typed settings that fail closed.

Every service has one settings class derived from :class:`ServiceSettings`; values come from
``MILLRACE_*`` environment variables and, for secrets, from files in ``MILLRACE_SECRETS_DIR``
(Kubernetes/Docker secrets). Invalid or unsafe configuration raises at start, never later.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Literal, Self, TypeVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_hostport(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {server!r}")
    return host, int(port)


class ServiceSettings(BaseSettings):
    """Settings every service shares. Field ``foo`` is read from ``MILLRACE_FOO``."""

    model_config = SettingsConfigDict(env_prefix="MILLRACE_", extra="ignore", frozen=True)

    env: Literal["dev", "prod"] = Field(
        "dev", description="dev allows plaintext Kafka on loopback and unauthenticated ingest."
    )
    service_name: str = Field("millrace", pattern=r"^[a-z][a-z0-9-]*$")
    instance_id: str = Field(default_factory=lambda: os.environ.get("HOSTNAME", str(os.getpid())))

    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Comma-separated host:port list.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_allow_plaintext: bool = Field(
        False, description="Allow PLAINTEXT to non-loopback brokers (compose networks only)."
    )
    kafka_auto_create_topics: bool = Field(False, description="Only allowed when env=dev.")
    kafka_send_timeout_ms: int = Field(30_000, ge=1_000, le=300_000)
    kafka_linger_ms: int = Field(5, ge=0, le=1_000)
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "zstd"

    database_url: SecretStr | None = Field(
        None, description="postgresql://user:pass@host:port/db; required by stateful services."
    )
    database_pool_max: int = Field(10, ge=1, le=200)

    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    ops_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /metrics, /docs, /openapi.json, /asyncapi (and the probes) on this "
        "internal port instead of the API's; unset: all on the API's port.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    shutdown_grace_s: float = Field(20.0, gt=0, le=300)

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap.split(",") if s.strip()]

    @model_validator(mode="after")
    def _fail_closed(self) -> Self:
        servers = self.bootstrap_servers
        if not servers:
            raise ValueError("MILLRACE_KAFKA_BOOTSTRAP is empty")
        hosts = [split_hostport(s)[0] for s in servers]
        if self.kafka_security_protocol == "PLAINTEXT":
            remote = [h for h in hosts if not is_loopback(h)]
            if remote and not (self.env == "dev" and self.kafka_allow_plaintext):
                raise ValueError(
                    f"plaintext Kafka to non-loopback brokers {remote} is refused; configure "
                    "MILLRACE_KAFKA_SECURITY_PROTOCOL=SASL_SSL, or in dev set "
                    "MILLRACE_KAFKA_ALLOW_PLAINTEXT=true"
                )
            if self.env == "prod":
                raise ValueError("env=prod requires MILLRACE_KAFKA_SECURITY_PROTOCOL=SASL_SSL")
        if self.kafka_security_protocol == "SASL_SSL" and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError("SASL_SSL needs MILLRACE_KAFKA_SASL_USERNAME and _PASSWORD")
        if self.ops_port is not None and self.ops_port == self.http_port:
            raise ValueError("MILLRACE_OPS_PORT must differ from MILLRACE_HTTP_PORT")
        if self.kafka_auto_create_topics and self.env != "dev":
            raise ValueError("topic auto-creation is only allowed with env=dev")
        return self


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S]) -> S:
    """Instantiate settings, reading secrets from ``MILLRACE_SECRETS_DIR`` when it is set."""
    secrets_dir = os.environ.get("MILLRACE_SECRETS_DIR")
    if secrets_dir:
        return cls(_secrets_dir=secrets_dir)
    return cls()
