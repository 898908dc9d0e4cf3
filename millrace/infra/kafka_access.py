"""SCRAM credentials and ACLs on a running broker, through Kafka's admin protocol.

aiokafka 0.14 carries the CreateAcls/DescribeAcls/DeleteAcls messages but no admin methods for
them, and nothing for AlterUserScramCredentials (KIP-554); both are sent here as raw requests on
an admin client's connection. Every call is idempotent, so ``infra up`` runs them on each start.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from millrace.infra.acls import AclBinding
from millrace.infra.process import InfraError

SCRAM_SHA_512 = 2  # org.apache.kafka.clients.admin.ScramMechanism
SCRAM_ITERATIONS = 8192  # Kafka's floor for SCRAM-SHA-512 is 4096
ANY, MATCH_ANY_PATTERN = 1, 1


class AlterUserScramCredentialsResponse_v0(Response):  # type: ignore[misc]  # noqa: N801
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):  # type: ignore[misc]  # noqa: N801
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentials(Request[AlterUserScramCredentialsRequest_v0]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[Any, ...]]) -> None:
        self._upsertions = upsertions

    def build(
        self, request_struct_class: type[AlterUserScramCredentialsRequest_v0]
    ) -> AlterUserScramCredentialsRequest_v0:
        return request_struct_class([], self._upsertions, {})


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """SCRAM's ``Hi()`` (RFC 5802) for SHA-512: what the broker stores instead of the password."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


async def upsert_scram_users(admin: AIOKafkaAdminClient, passwords: Mapping[str, str]) -> None:
    """Create or reset each user's SCRAM-SHA-512 credential to the given password."""
    upsertions: list[tuple[Any, ...]] = []
    for name, password in sorted(passwords.items()):
        salt = secrets.token_bytes(32)
        upsertions.append(
            (name, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted_password(password, salt), {})
        )
    response = await admin._send_request(AlterUserScramCredentials(upsertions))
    for user, code, message, _tags in response.results:
        _raise_for(code, f"setting the SCRAM credential of {user!r}", message)


async def describe_acls(admin: AIOKafkaAdminClient) -> frozenset[AclBinding]:
    """Every ACL the broker holds."""
    request = DescribeAclsRequest(ANY, None, MATCH_ANY_PATTERN, None, None, ANY, ANY)
    response = await admin._send_request(request)
    _raise_for(response.error_code, "describing ACLs", response.error_message)
    return frozenset(
        AclBinding(
            principal=principal,
            resource_type=resource_type,
            resource_name=resource_name,
            pattern_type=pattern_type,
            operation=operation,
            permission=permission,
            host=host,
        )
        for resource_type, resource_name, pattern_type, acls in response.resources
        for principal, host, operation, permission in acls
    )


async def create_acls(admin: AIOKafkaAdminClient, bindings: Iterable[AclBinding]) -> None:
    # aiokafka's request builds one binding per request; a few dozen round trips on loopback.
    for b in sorted(bindings):
        request = CreateAclsRequest(*_fields(b))
        response = await admin._send_request(request)
        for code, message in response.creation_responses:
            _raise_for(code, f"creating ACL {b}", message)


async def delete_acls(admin: AIOKafkaAdminClient, bindings: Iterable[AclBinding]) -> None:
    for b in sorted(bindings):
        response = await admin._send_request(DeleteAclsRequest(*_fields(b)))
        for code, message, _matching in response.filter_responses:
            _raise_for(code, f"deleting ACL {b}", message)


async def sync_acls(
    admin: AIOKafkaAdminClient, wanted: frozenset[AclBinding], settle_s: float = 30.0
) -> tuple[int, int]:
    """Make the broker's ACLs exactly ``wanted``; return how many were created and deleted.

    Returns once the broker enforces them: changes reach its authorizer through the metadata
    log a moment after the controller accepted them, and a client started right after
    ``infra up`` must not be refused by an ACL still on its way.
    """
    present = await describe_acls(admin)
    missing, stale = wanted - present, present - wanted
    await create_acls(admin, missing)
    await delete_acls(admin, stale)
    deadline = time.monotonic() + settle_s
    while await describe_acls(admin) != wanted:
        if time.monotonic() > deadline:
            raise InfraError(f"the broker's ACLs did not match within {settle_s:.0f}s")
        await asyncio.sleep(0.1)
    return len(missing), len(stale)


def _fields(b: AclBinding) -> tuple[Any, ...]:
    return (
        b.resource_type,
        b.resource_name,
        b.pattern_type,
        b.principal,
        b.host,
        b.operation,
        b.permission,
    )


def _raise_for(code: int, what: str, message: str | None) -> None:
    if code:
        raise InfraError(f"{what} failed: {for_code(code).__name__}: {message or ''}".rstrip())
