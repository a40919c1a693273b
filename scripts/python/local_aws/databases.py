"""Real PostgreSQL behind the local AWS's restored RDS for PostgreSQL instances, so that a
restore drill's SQL probe logs in and queries a database, as on AWS.

A DB instance restored from a snapshot is "created from the source database restore point
with most of the source's original configuration" (RestoreDBInstanceFromDBSnapshot): its
users, and so the master user's name and password, are the snapshot's. "By default, RDS for
PostgreSQL uses and expects all clients to connect using SSL/TLS", with a certificate RDS
creates that "includes the DB instance endpoint as the Common Name" ("Using SSL with a
PostgreSQL DB instance"); `rds.force_ssl` = 1 refuses a connection without it.

Here each restored `postgres` instance gets a PostgreSQL server of its own, started beside the
restore (its processes start while the restore runs; a call that describes it once available
waits for the start to end, so whoever sees its endpoint finds it running): initdb with the snapshot's master user and password (SCRAM), the
instance's DBName created, TLS only (`hostssl`, as with `rds.force_ssl` = 1), listening on
localhost on a port of its own, which the instance's endpoint reports (`localhost:<port>`).
Deleting the instance stops its server. The certificate is the local AWS's own authority's (for localhost): RDS's authorities
did not sign it, so every function gets that authority in PROBE_EXTRA_CA_CERTIFICATES (the
probe trusts it beside RDS's). Other engines, and Aurora clusters, have no server.

The servers are the machine's PostgreSQL (`/usr/lib/postgresql/<version>/bin`, or
LOCAL_AWS_POSTGRES_BINDIR); run as root, they run as the `postgres` user, as PostgreSQL
refuses root.
"""

from __future__ import annotations

import datetime
import glob
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ENGINES = ("postgres",)
SYSTEM_USER = "postgres"


def _bindir() -> Path:
    configured = os.environ.get("LOCAL_AWS_POSTGRES_BINDIR")
    candidates = [configured] if configured else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "postgres").exists() and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise RuntimeError("the local AWS's restored PostgreSQL instances need PostgreSQL's server (initdb, postgres): "
                       "install it (scripts/setup-tools does, on Debian) or set LOCAL_AWS_POSTGRES_BINDIR")


class Authority:
    """The local AWS's certificate authority, and one server certificate of it for localhost."""

    def __init__(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local AWS database authority")])
        self.certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
        self.server_key = ec.generate_private_key(ec.SECP256R1())
        self.server_certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(name).public_key(self.server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def write_server_files(self, directory: Path) -> tuple[Path, Path]:
        certificate, key = directory / "server.crt", directory / "server.key"
        certificate.write_bytes(self.server_certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(self.server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
        key.chmod(0o600)
        return certificate, key


AUTHORITY = Authority()


def function_environment() -> dict[str, str]:
    """What every function run by the local AWS gets: the authority of its databases' certificates."""
    return {"PROBE_EXTRA_CA_CERTIFICATES": AUTHORITY.pem}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, directory: Path, port: int, process: subprocess.Popen):
        self.directory, self.port, self.process = directory, port, process

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: PostgreSQL's smart shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class Servers:
    """The running servers, each one a restored instance's."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running: set[Server] = set()

    def start(self, identifier: str, username: str, password: str, database: str | None) -> Server:
        bindir = _bindir()
        as_root = os.geteuid() == 0
        owner = pwd.getpwnam(SYSTEM_USER) if as_root else None
        directory = Path(tempfile.mkdtemp(prefix=f"local-aws-{identifier}-"))
        data = directory / "data"
        password_file = directory / "password"
        password_file.write_text(password)
        if owner is not None:
            for path in (directory, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        user = SYSTEM_USER if as_root else None
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", username, f"--pwfile={password_file}",
                        "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync", "-E", "UTF8",
                        "--locale=C"], check=True, capture_output=True, user=user)
        password_file.unlink()
        # TLS only, as rds.force_ssl = 1: connections without it are refused.
        (data / "pg_hba.conf").write_text("local all all trust\n"
                                          "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                                          "hostssl all all ::1/128 scram-sha-256\n")
        certificate, private_key = AUTHORITY.write_server_files(data)
        if owner is not None:
            for path in (data / "pg_hba.conf", certificate, private_key):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        port = _free_port()
        with open(directory / "server.log", "wb") as log:
            process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=localhost",
                 "-c", f"unix_socket_directories={directory}", "-c", "ssl=on", "-c", f"ssl_cert_file={certificate}",
                 "-c", f"ssl_key_file={private_key}", "-c", "fsync=off", "-c", "shared_buffers=8MB",
                 "-c", "max_connections=10"],
                stdout=subprocess.DEVNULL, stderr=log, user=user)
        server = Server(directory, port, process)
        try:
            self._wait_ready(bindir, directory, port, username, user)
            if database and database != "postgres":
                subprocess.run([str(bindir / "createdb"), "-h", str(directory), "-p", str(port), "-U", username,
                                database], check=True, capture_output=True, user=user)
        except Exception:
            server.stop()
            raise
        with self.lock:
            self.running.add(server)
        return server

    @staticmethod
    def _wait_ready(bindir: Path, socket_dir: Path, port: int, username: str, user: str | None) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run([str(bindir / "pg_isready"), "-q", "-h", str(socket_dir), "-p", str(port),
                                    "-U", username], user=user)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the local PostgreSQL on port {port} did not start: {socket_dir / 'server.log'}")

    def stop(self, server: Server) -> None:
        with self.lock:
            self.running.discard(server)
        server.stop()

    def stop_all(self) -> None:
        with self.lock:
            servers, self.running = list(self.running), set()
        for server in servers:
            server.stop()


SERVERS = Servers()
