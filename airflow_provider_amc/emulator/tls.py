"""HTTPS for the emulator: a throw-away CA and a server certificate signed by it, or files given.

Uses ``cryptography`` (Airflow itself depends on it), so no new dependency. Clients trust the CA
file (:attr:`TlsFiles.ca_file`): ``REQUESTS_CA_BUNDLE``, or the ``amc`` connection extra ``verify``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE: Final = "ca.pem"
CERT_FILE: Final = "server.pem"
KEY_FILE: Final = "server-key.pem"
VALID_DAYS: Final = 365
LOCAL_NAMES: Final = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the server's certificate chain and key, and the CA clients must trust."""

    certfile: str
    keyfile: str
    ca_file: str

    @classmethod
    def given(cls, certfile: str, keyfile: str, ca_file: str | None = None) -> TlsFiles:
        """Files the user brings; without ``ca_file`` clients trust the certificate itself."""
        for label, path in (("certificate", certfile), ("key", keyfile), ("CA", ca_file)):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"TLS {label} file not found: {path}")
        return cls(str(certfile), str(keyfile), str(ca_file or certfile))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


_KEY_USAGES: Final = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    return x509.KeyUsage(**{name: name in allowed for name in _KEY_USAGES})


def _alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def server_names(bind_host: str, extra: Iterable[str] = ()) -> list[str]:
    """The names the certificate covers: loopback, the bound host, this machine's name, ``extra``."""
    names = [*LOCAL_NAMES, *extra]
    if bind_host not in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        names.append(bind_host)
    names.append(socket.gethostname())
    return names


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)


def generate(directory: str | os.PathLike[str], hosts: Iterable[str]) -> TlsFiles:
    """Write a new CA and a server certificate for ``hosts`` (DNS names or IPs) into ``directory``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(minutes=5)
    until = now + timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("AMC emulator test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("AMC emulator"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature", "key_agreement"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = TlsFiles(str(folder / CERT_FILE), str(folder / KEY_FILE), str(folder / CA_FILE))
    _write(Path(files.ca_file), ca_cert.public_bytes(pem))
    _write(Path(files.certfile), cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(Path(files.keyfile), key_pem, private=True)
    return files
