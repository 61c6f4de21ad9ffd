"""A real PostgreSQL server for tests and benchmarks, in a temporary directory on 127.0.0.1.

The server binaries come from Debian's ``postgresql`` package (``make deps`` installs it; found
under ``/usr/lib/postgresql/<version>/bin``, or ``GATEWAY_PG_BIN``). ``initdb`` refuses to run
as root, so as root the cluster belongs to the ``postgres`` user (else ``nobody``) and every
server command runs as that user; otherwise as the current user. Data directory, socket and
log are all inside one directory, so several servers can run side by side::

    with PostgresServer() as server:
        url = server.create_database("claims")   # postgresql://postgres@127.0.0.1:PORT/claims
        ...

``durable=False`` (the tests' default) turns off ``fsync`` and ``full_page_writes``: the tests
kill gateway processes, never the server or the machine. Benchmarks keep the defaults.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.net import free_port

MISSING_REASON = (
    "PostgreSQL server binaries are not installed (install Debian's postgresql, e.g. "
    "`sudo make deps`, to run the PostgreSQL tests)"
)


class PostgresError(RuntimeError):
    """The test server could not be started or driven."""


def find_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (the newest version), or None."""
    configured = os.environ.get("GATEWAY_PG_BIN")
    if configured:
        return Path(configured) if (Path(configured) / "pg_ctl").is_file() else None
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "pg_ctl").is_file()),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    if versions:
        return versions[-1]
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _run_as() -> str | None:
    """The user to run the server as (root may not), or None for the current user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresError("running as root, but there is neither a postgres nor a nobody user")


class PostgresServer:
    """A PostgreSQL cluster in ``root`` (a new temporary directory by default)."""

    def __init__(
        self, root: Path | None = None, *, durable: bool = False, max_connections: int = 200
    ) -> None:
        found = find_bin()
        if found is None:
            raise PostgresError(MISSING_REASON)
        self.bin = found
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="gateway-pg-")) if root is None else root
        self.durable = durable
        self.max_connections = max_connections
        self.port = 0
        self.user = _run_as()
        self._started = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _command(self, *args: str) -> list[str]:
        if self.user is None:
            return list(args)
        return ["runuser", "-u", self.user, "--", *args]

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> PostgresServer:
        """initdb (first time) and start; returns once the server accepts connections."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        self.root.chmod(0o755)
        if not (self.data / "PG_VERSION").is_file():
            subprocess.run(
                self._command(
                    str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                    "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                ),
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        self.port = self.port or free_port()
        settings = [
            "-c listen_addresses=127.0.0.1",
            f"-p {self.port}",
            f"-k {self.root}",
            f"-c max_connections={self.max_connections}",
        ]
        if not self.durable:
            settings += ["-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off"]
        result = subprocess.run(
            self._command(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                str(self.root / "server.log"), "-o", " ".join(settings), "-w", "-t", "60",
                "start",
            ),
            capture_output=True, timeout=90, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(f"pg_ctl start failed: {result.stderr.decode()}\n{self.log_tail()}")
        self._started = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to the ``postgres`` database."""
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` if given); its URL."""
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def create_schema(self, database: str, schema: str) -> str:
        """Create ``schema`` in ``database``; a URL whose connections work in it (their
        ``search_path``). Much faster than a database of its own per test."""
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return self.schema_url(database, schema)

    def schema_url(self, database: str, schema: str) -> str:
        """The URL of ``database`` with ``schema`` as the ``search_path``."""
        return f"{self.url(database)}?options=-c%20search_path%3D{schema}"

    def empty_schema(self, database: str, schema: str) -> None:
        """Delete every row in ``schema`` (the schema version aside) and restart its ids: a
        new database for the next test in milliseconds, where TRUNCATE takes a fifth of a
        second and a new schema half a second."""
        with psycopg.connect(self.url(database), autocommit=True) as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no FK triggers
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s "
                "AND tablename <> 'schema_version'",
                [schema],
            ).fetchall()
            for (table,) in tables:
                conn.execute(f'DELETE FROM "{schema}"."{table}"')
            conn.execute(
                "SELECT setval(pg_get_serial_sequence(format('%%I.%%I', table_schema, "
                "table_name), column_name), 1, false) FROM information_schema.columns "
                "WHERE table_schema = %s AND is_identity = 'YES'",
                [schema],
            )

    def drop_schema(self, database: str, schema: str) -> None:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), waiting for it to end."""
        pid_file = self.data / "postmaster.pid"
        if not self._started or not pid_file.is_file():
            return
        pid = int(pid_file.read_text().split("\n", 1)[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self._started = False

    def close(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        log = self.root / "server.log"
        if not log.is_file():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
