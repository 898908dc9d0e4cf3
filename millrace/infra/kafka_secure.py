"""The local broker with Kafka access enforced: SASL/SCRAM-SHA-512 over TLS, per-service ACLs.

Layout under the broker's home (the state dir's ``kafka/``):

- ``tls/ca.crt`` (what clients trust) and ``tls/broker.pem`` (key and chain, mode 0600);
- ``users/<principal>/millrace_kafka_sasl_password`` (mode 0600, directory 0700): one per
  ``KafkaUser`` of the Kustomize base plus the admin. The file name is the one the settings
  read from ``MILLRACE_SECRETS_DIR``, as in the prod overlay, so a service can be pointed at
  its directory.

The admin's credential is written into the storage at format time (the broker's own
inter-broker connection needs it before anything else runs); the services' credentials and
ACLs are set through the admin API on every start, so a new or changed ``KafkaUser`` takes
effect at the next ``infra up`` without wiping data.
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from millrace.infra import kafka_access
from millrace.infra.acls import K8S_BASE, all_bindings, load_users
from millrace.infra.process import InfraError
from millrace.infra.tls import BROKER_CN, ensure_certificates, tls_files, write_private

ADMIN_USER = "millrace-admin"
MECHANISM = "SCRAM-SHA-512"
PASSWORD_FILE = "millrace_kafka_sasl_password"  # noqa: S105 - a file name, not a secret
LISTENER = "SASL_SSL"


@dataclass(frozen=True)
class SecureLayout:
    home: Path

    @property
    def ca_cert(self) -> Path:
        return tls_files(self.home / "tls").ca_cert

    @property
    def users_dir(self) -> Path:
        return self.home / "users"

    def password_file(self, user: str) -> Path:
        return self.users_dir / user / PASSWORD_FILE

    def password(self, user: str) -> str:
        """The user's password, generated on first use and kept in its 0600 file."""
        path = self.password_file(user)
        if path.is_file():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.users_dir.chmod(0o700)
        path.parent.chmod(0o700)
        # token_hex: no characters the storage tool's --add-scram syntax (,=[]") gives meaning to
        value = secrets.token_hex(24)
        write_private(path, f"{value}\n".encode())
        return value

    def admin_security(self) -> dict[str, Any]:
        return client_security(self.ca_cert, ADMIN_USER, self.password(ADMIN_USER))


def client_security(cafile: Path, user: str, password: str) -> dict[str, Any]:
    """aiokafka keyword arguments for a SASL_SSL client of the local secure broker."""
    return {
        "security_protocol": "SASL_SSL",
        "ssl_context": ssl.create_default_context(cafile=str(cafile)),
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }


def secure_properties(layout: SecureLayout, port: int, controller_port: int) -> dict[str, str]:
    """Listeners, TLS, SASL and the authorizer; merged over the plaintext broker's settings.

    Clients have one SASL_SSL listener. The KRaft controller listens on its own port with TLS
    and client certificates required: the broker dials it with its own certificate and is a
    super user by that certificate's name, so no password and no anonymous principal is
    trusted there.
    """
    tls = ensure_certificates(layout.home / "tls")
    admin_password = layout.password(ADMIN_USER)
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{admin_password}";'
    )
    return {
        "listeners": f"{LISTENER}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"{LISTENER}://127.0.0.1:{port}",
        "listener.security.protocol.map": f"CONTROLLER:SSL,{LISTENER}:SASL_SSL",
        "inter.broker.listener.name": LISTENER,
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.{LISTENER.lower()}.scram-sha-512.sasl.jaas.config": jaas,
        "listener.name.controller.ssl.client.auth": "required",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.broker_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_cert),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER};User:CN={BROKER_CN}",
        "allow.everyone.if.no.acl.found": "false",
    }


def format_arguments(layout: SecureLayout) -> list[str]:
    """The storage tool's arguments that put the admin's SCRAM credential into the metadata."""
    password = layout.password(ADMIN_USER)
    return ["--add-scram", f"{MECHANISM}=[name={ADMIN_USER},password={password}]"]


async def grant_access(layout: SecureLayout, bootstrap: str, base: Path = K8S_BASE) -> str:
    """Give every ``KafkaUser`` its credential and make the ACLs exactly theirs; as the admin.

    Returns a one-line summary for the start-up output.
    """
    users = load_users(base)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **layout.admin_security())
    try:
        await admin.start()
        await kafka_access.upsert_scram_users(
            admin, {user.name: layout.password(user.name) for user in users}
        )
        created, deleted = await kafka_access.sync_acls(admin, all_bindings(users))
    except KafkaError as exc:
        raise InfraError(f"granting Kafka access as {ADMIN_USER} failed: {exc!r}") from exc
    finally:
        await admin.close()
    names = ", ".join(user.name for user in users)
    return f"principals {names}: credentials set, ACLs {created} created, {deleted} removed"
