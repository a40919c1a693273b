"""Real database servers behind the local AWS's restored RDS for PostgreSQL, MySQL and MariaDB
instances and the writers of its restored Aurora PostgreSQL and Aurora MySQL clusters, so that a
restore drill's SQL probe logs in and queries a database, as on AWS.

A DB instance restored from a snapshot is "created from the source database restore point
with most of the source's original configuration" (RestoreDBInstanceFromDBSnapshot): its
users, and so the master user's name and password, are the snapshot's. "By default, RDS for
PostgreSQL uses and expects all clients to connect using SSL/TLS", with a certificate RDS
creates that "includes the DB instance endpoint as the Common Name" ("Using SSL with a
PostgreSQL DB instance"); `rds.force_ssl` = 1 refuses a connection without it. RDS for MySQL
and MariaDB serve TLS with a certificate of the same authorities, and `require_secure_transport`
= ON refuses a connection without it ("SSL/TLS support for MySQL DB instances on Amazon RDS").

Here each restored `postgres`, `mysql` or `mariadb` instance gets a server of its own, started
beside the restore (its processes start while the restore runs; a call that describes it once
available waits for the start to end, so whoever sees its endpoint finds it running), with the
snapshot's master user and password and the instance's DBName created, TLS only, listening on
localhost on a port of its own, which the instance's endpoint reports (`localhost:<port>`):
PostgreSQL (initdb, SCRAM, `hostssl` only, as with `rds.force_ssl` = 1), and MariaDB for both
MySQL and MariaDB (`require_secure_transport` = ON; MariaDB speaks MySQL's protocol, and Debian
ships no MySQL server). Deleting the instance stops its server. The certificate is the local
AWS's own authority's (for localhost): RDS's authorities did not sign it, so every function
gets that authority in PROBE_EXTRA_CA_CERTIFICATES (the probe trusts it beside RDS's). A DB
instance added to a restored Aurora cluster gets a server the same way, with the cluster's master
user (`aurora-postgresql`: PostgreSQL; `aurora-mysql`: MariaDB). Other engines have no server.

The servers are the machine's PostgreSQL (`/usr/lib/postgresql/<version>/bin`, or
LOCAL_AWS_POSTGRES_BINDIR) and MariaDB (`mariadbd` and its tools on the PATH or in /usr/sbin);
run as root, they run as the `postgres` and `mysql` users, as both refuse root.
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

POSTGRES_ENGINES = ("postgres", "aurora-postgresql")
MYSQL_ENGINES = ("mysql", "mariadb", "aurora-mysql")
ENGINES = POSTGRES_ENGINES + MYSQL_ENGINES


def _postgres_bindir() -> Path:
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

    def end_process(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: PostgreSQL's smart shutdown, MariaDB's normal one
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        self.end_process()
        shutil.rmtree(self.directory, ignore_errors=True)

    def ready_or_ended(self, ready: list[str], user: str | None) -> None:
        """Waits for `ready` to succeed (the server answering on its socket), at most 30 s; a
        server that does not get there is ended."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            if subprocess.run(ready, capture_output=True, user=user).returncode == 0:
                return
            time.sleep(0.1)
        self.end_process()
        raise RuntimeError("it did not answer within 30 s" if self.process.returncode is None
                           else f"it exited with {self.process.returncode}")


def _why(directory: Path, err: Exception) -> str:
    """A failed start's error, with what the failed program and the server's log said last."""
    said = [str(err)]
    if isinstance(err, subprocess.CalledProcessError) and err.stderr:
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr
        said.append(stderr.strip()[-1000:])
    log = directory / "server.log"
    if log.exists():
        said.append("server log: " + log.read_text(errors="replace").strip()[-1000:])
    return "; ".join(said)


def _owned_by(owner: pwd.struct_passwd | None, *paths: Path) -> None:
    for path in paths if owner is not None else ():
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _start_postgres(directory: Path, owner: pwd.struct_passwd | None, username: str, password: str,
                    database: str | None) -> Server:
    bindir = _postgres_bindir()
    user = owner.pw_name if owner else None
    data = directory / "data"
    password_file = directory / "password"
    password_file.write_text(password)
    _owned_by(owner, password_file)
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", username, f"--pwfile={password_file}",
                    "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync", "-E", "UTF8",
                    "--locale=C"], check=True, capture_output=True, user=user)
    password_file.unlink()
    # TLS only, as rds.force_ssl = 1: connections without it are refused.
    (data / "pg_hba.conf").write_text("local all all trust\n"
                                      "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                                      "hostssl all all ::1/128 scram-sha-256\n")
    certificate, private_key = AUTHORITY.write_server_files(data)
    _owned_by(owner, data / "pg_hba.conf", certificate, private_key)
    port = _free_port()
    with open(directory / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=localhost",
             "-c", f"unix_socket_directories={directory}", "-c", "ssl=on", "-c", f"ssl_cert_file={certificate}",
             "-c", f"ssl_key_file={private_key}", "-c", "fsync=off", "-c", "shared_buffers=8MB",
             "-c", "max_connections=10"],
            stdout=subprocess.DEVNULL, stderr=log, user=user)
    server = Server(directory, port, process)
    server.ready_or_ended([str(bindir / "pg_isready"), "-q", "-h", str(directory), "-p", str(port), "-U", username],
                          user)
    try:
        if database and database != "postgres":
            subprocess.run([str(bindir / "createdb"), "-h", str(directory), "-p", str(port), "-U", username,
                            database], check=True, capture_output=True, user=user)
    except Exception:
        server.end_process()
        raise
    return server


def _mariadb_program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("the local AWS's restored MySQL and MariaDB instances need MariaDB's server "
                           f"({name}): install it (scripts/setup-tools does, on Debian)")
    return found


def _sql_text(value: str) -> str:
    """A quoted SQL string literal (MariaDB's escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _start_mariadb(directory: Path, owner: pwd.struct_passwd | None, username: str, password: str,
                   database: str | None) -> Server:
    user = owner.pw_name if owner else None
    as_user = [f"--user={user}"] if user else []
    data, socket_path = directory / "data", directory / "mysqld.sock"
    small = ["--innodb-buffer-pool-size=8M", "--innodb-log-file-size=4M", "--skip-name-resolve"]
    # A root with no password (dropped below but for its socket login, root@localhost).
    subprocess.run([_mariadb_program("mariadb-install-db"), "--no-defaults", f"--datadir={data}", *as_user,
                    "--auth-root-authentication-method=normal", "--skip-test-db", *small],
                   check=True, capture_output=True)
    certificate, private_key = AUTHORITY.write_server_files(directory)
    _owned_by(owner, certificate, private_key)
    port = _free_port()
    process = subprocess.Popen(
        [_mariadb_program("mariadbd"), "--no-defaults", f"--datadir={data}", *as_user, f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={socket_path}", f"--pid-file={directory / 'mysqld.pid'}",
         f"--log-error={directory / 'server.log'}", f"--ssl-cert={certificate}", f"--ssl-key={private_key}",
         "--require-secure-transport=ON", "--skip-log-bin", "--performance-schema=OFF", "--max-connections=10",
         "--innodb-flush-log-at-trx-commit=0", *small],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(directory, port, process)
    client = [_mariadb_program("mariadb"), "--no-defaults", f"--socket={socket_path}", "--user=root"]
    server.ready_or_ended([_mariadb_program("mariadb-admin"), "--no-defaults", f"--socket={socket_path}",
                           "--user=root", "ping"], None)
    try:
        master = f"{_sql_text(username)}@'%'"
        # RDS has no root: the server's own logs in on its socket only, never over TCP.
        statements = ["DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1'",
                      f"CREATE USER {master} IDENTIFIED BY {_sql_text(password)}",
                      f"GRANT ALL PRIVILEGES ON *.* TO {master} WITH GRANT OPTION"]
        if database:
            statements.append("CREATE DATABASE `" + database.replace("`", "``") + "`")
        # The password goes through stdin, not the command line.
        subprocess.run(client, input=";\n".join(statements) + ";\n", text=True, check=True, capture_output=True)
    except Exception:
        server.end_process()
        raise
    return server


class Servers:
    """The running servers, each one a restored instance's."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running: set[Server] = set()

    def start(self, identifier: str, engine: str, username: str, password: str, database: str | None) -> Server:
        """A server for the restored instance; if it cannot start, nothing of it is left, and the
        error says why."""
        postgres = engine in POSTGRES_ENGINES
        # Its own directory, owned by the user it runs as (run as root: both servers refuse root).
        owner = pwd.getpwnam("postgres" if postgres else "mysql") if os.geteuid() == 0 else None
        directory = Path(tempfile.mkdtemp(prefix=f"local-aws-{identifier}-"))
        try:
            _owned_by(owner, directory)
            server = (_start_postgres if postgres else _start_mariadb)(directory, owner, username, password, database)
        except Exception as err:
            why = _why(directory, err)
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeError(f"the {engine} server of {identifier} did not start: {why}") from err
        with self.lock:
            self.running.add(server)
        return server

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
