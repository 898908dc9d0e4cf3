"""The local CA and broker certificate: a real TLS handshake on loopback trusts them, the key
stays private, and they are kept until close to expiry."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from pathlib import Path
from typing import cast

from cryptography import x509

from millrace.infra.tls import BROKER_CN, RENEW_BEFORE, VALID_FOR, ensure_certificates


def handshake(broker_pem: Path, ca_cert: Path, server_hostname: str) -> str:
    """Serve TLS with the broker's PEM on loopback; return the peer name the client verified."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(broker_pem)  # the key and chain in one file, as Kafka reads it
    client_ctx = ssl.create_default_context(cafile=str(ca_cert))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

        server = threading.Thread(target=serve)
        server.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            peer = tls.getpeercert()
            tls.sendall(b"x")
        server.join(5)
    assert peer is not None
    subject = cast(tuple[tuple[tuple[str, str], ...], ...], peer["subject"])
    return next(value for rdn in subject for key, value in rdn if key == "commonName")


def test_clients_that_trust_the_ca_verify_the_broker_by_ip_and_name(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls")
    assert handshake(files.broker_pem, files.ca_cert, "127.0.0.1") == BROKER_CN
    assert handshake(files.broker_pem, files.ca_cert, "localhost") == BROKER_CN


def test_the_key_file_is_private_and_holds_key_then_chain(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls")
    assert files.broker_pem.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    text = files.broker_pem.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    broker, ca = x509.load_pem_x509_certificates(text.encode())
    assert ca == x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    broker.verify_directly_issued_by(ca)
    san = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert not list((tmp_path / "tls").glob("ca.key*"))  # the CA key is never written


def test_certificates_are_kept_until_close_to_expiry_then_remade(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    first = ensure_certificates(tmp_path / "tls", now)
    pem = first.broker_pem.read_bytes()
    assert ensure_certificates(tmp_path / "tls", now + dt.timedelta(days=30)) == first
    assert first.broker_pem.read_bytes() == pem

    late = now + VALID_FOR - RENEW_BEFORE + dt.timedelta(hours=1)
    renewed = ensure_certificates(tmp_path / "tls", late)
    assert renewed.broker_pem.read_bytes() != pem
    cert = x509.load_pem_x509_certificates(renewed.broker_pem.read_bytes())[0]
    assert cert.not_valid_after_utc > late + RENEW_BEFORE
