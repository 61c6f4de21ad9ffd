"""The claims store's engine on PostgreSQL (psycopg 3): several gateway instances, one database.

- **Connections.** A pool (``psycopg_pool``, ``database.pool_size``) in autocommit mode: a read
  takes a connection for one statement, a transaction for its block (READ COMMITTED). A
  connection found broken is dropped from the pool (a server restart or failover costs the
  statements in hand, which fail as ``StorageError`` and are retried by their callers), rather
  than every connection checked with a round trip before each use.
- **SQL.** The store's portable SQL with ``?`` turned into ``%s`` (``ddl.placeholders``). A
  ``numeric`` result with no fraction (``SUM`` of a ``BIGINT``) comes back as an ``int``, as
  SQLite gives it.
- **Schema.** ``schema.sql`` and the migration steps, translated (``ddl.to_postgres``), under an
  advisory lock, so instances starting together migrate once; a new database is made in one
  transaction.
- **Locks between instances.** ``try_lock`` takes a session advisory lock on a connection of
  its own (with TCP keepalives both ways, so a dead peer is noticed within about 25 s), which
  PostgreSQL releases when that connection ends: the process died, or lost the server. The
  engine holds ``instance:<its name>`` while open; ``held`` asks ``pg_locks`` whether anyone
  holds a name. ``Transaction.serialise`` is a transaction-scoped advisory lock.
- **Read-only** (``read_only=True``, ``database.open_read_only``): every transaction is read-only
  on the server, and the schema is taken as it is (it must be this gateway's version): for
  commands that look at a live database and must never write to it.
- **Errors.** A driver error becomes ``StorageError`` with the server's primary message only:
  its DETAIL may quote row values, and those may be national identity numbers.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

import psycopg
from psycopg import conninfo as pq_conninfo
from psycopg.adapt import Buffer, Loader
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.errors import StorageError
from gateway.logs import get_logger
from gateway.store.ddl import placeholders, to_postgres
from gateway.store.engine import (
    Params,
    ReadOnlyEngine,
    Row,
    instance_lock,
    new_instance_name,
)
from gateway.store.migrations import MIGRATIONS, POSTGRES_SINCE, SCHEMA_VERSION

__all__ = ["PostgresEngine", "describe", "lock_key"]

log = get_logger("store.postgres")

#: Noticing a dead peer: client side (libpq) and server side (the session's settings).
_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}
_SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)
_READ_ONLY = "-c default_transaction_read_only=on"
_SCHEMA_LOCK = "schema"
_CREATED = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|VIEW)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE
)


def lock_key(name: str) -> int:
    """The 64-bit advisory lock key of a lock name."""
    digest = hashlib.sha256(b"gateway:" + name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def describe(url: str) -> str:
    """Where ``url`` points, for messages and logs: never its password."""
    try:
        parts = pq_conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "a PostgreSQL database (unreadable URL)"
    host = parts.get("host") or "local socket"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{parts.get('user') or ''}@{host}{port}/{parts.get('dbname') or ''}"


def _failure(failure: str, exc: Exception) -> StorageError:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc).split("\n", 1)[0]
    return StorageError(f"{failure}: {primary}")


class _IntegralNumericLoader(Loader):
    """``numeric`` text as ``int`` when it has no fraction, else ``Decimal``."""

    def load(self, data: Buffer) -> int | Decimal:
        text = bytes(data).decode("ascii")
        return int(text) if text.lstrip("-").isdigit() else Decimal(text)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", _IntegralNumericLoader)


class PostgresTransaction:
    """The store's ``Transaction`` on a pooled connection whose transaction is open."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        cursor = self._conn.execute(placeholders(sql), list(params))
        return cursor.fetchall() if cursor.description is not None else []

    def one(self, sql: str, params: Params = ()) -> Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(placeholders(sql), list(params)).rowcount

    def execute_many(self, sql: str, params: Iterable[Params]) -> None:
        batch = [list(p) for p in params]
        if batch:
            with self._conn.cursor() as cursor:
                cursor.executemany(placeholders(sql), batch)

    def insert(self, sql: str, params: Params) -> int:
        returned = self.rows(sql, params)
        if len(returned) != 1:
            raise StorageError(f"an insert returned {len(returned)} ids, not one: {sql[:60]}")
        return int(returned[0][0])

    def serialise(self, name: str) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])


class _Translated:
    """A migration step's ``Statements`` on PostgreSQL: each statement translated."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Iterable[object] = (), /) -> object:
        params = list(parameters)
        for statement in to_postgres(sql):
            self._conn.execute(placeholders(statement) if params else statement, params or None)
        return None


class PostgresEngine:
    """The claims database on a PostgreSQL server, created or migrated when opened."""

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        read_only: bool = False,
    ) -> None:
        self.url = url
        self.where = describe(url)
        self.instance = new_instance_name()
        parts = pq_conninfo.conninfo_to_dict(url)
        defaults = {"application_name": "gateway", "connect_timeout": str(int(connect_timeout))}
        given = str(parts.pop("options", None) or "")
        self._conninfo = pq_conninfo.make_conninfo(
            "", **{**defaults, **_KEEPALIVES, **{k: str(v) for k, v in parts.items()}}
        )
        if read_only:  # every transaction of every connection: a write fails on the server
            given = " ".join(filter(None, (given, _READ_ONLY)))
        if given:
            self._conninfo = pq_conninfo.make_conninfo(self._conninfo, options=given)
        options = " ".join(filter(None, (given, _SERVER_KEEPALIVES)))
        self._lock_conninfo = pq_conninfo.make_conninfo(self._conninfo, options=options)
        self._lock = threading.Lock()  # the lock connection and the set of locks held on it
        self._held: set[str] = set()
        self._created: set[str] = set()
        self._locks: psycopg.Connection[Any] | None = None
        try:
            self._lock_connection()
            if read_only:
                self._check_version()
            else:
                self._migrate()
        except psycopg.Error as exc:
            self._close_locks()
            raise _failure(f"cannot open database {self.where}", exc) from exc
        except StorageError:  # a schema this gateway cannot use
            self._close_locks()
            raise
        self._pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            timeout=30.0,
            name="gateway",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            self._close_locks()
            raise StorageError(f"cannot open database {self.where}: {exc}") from exc

    def close(self) -> None:
        self._pool.close()
        self._close_locks()

    # --- statements -----------------------------------------------------------------------------

    @contextmanager
    def transaction(self, failure: str, *, durable: bool = True) -> Iterator[PostgresTransaction]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit = off")
                yield PostgresTransaction(conn)
        except psycopg.Error as exc:
            raise _failure(failure, exc) from exc
        except PoolTimeout as exc:
            raise StorageError(f"{failure}: no connection to {self.where}: {exc}") from exc

    @contextmanager
    def session(self, failure: str) -> Iterator[PostgresTransaction]:
        try:
            with self._pool.connection() as conn:
                yield PostgresTransaction(conn)  # autocommit: each statement on its own
        except psycopg.Error as exc:
            raise _failure(failure, exc) from exc
        except PoolTimeout as exc:
            raise StorageError(f"{failure}: no connection to {self.where}: {exc}") from exc

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            with self._pool.connection() as conn:
                return PostgresTransaction(conn).rows(sql, params)
        except psycopg.Error as exc:
            raise _failure("query failed", exc) from exc
        except PoolTimeout as exc:
            raise StorageError(f"query failed: no connection to {self.where}: {exc}") from exc

    def one(self, sql: str, params: Params = ()) -> Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def create_tables(self, ddl: str) -> None:
        if ddl in self._created:
            return
        names = sorted({m[1].lower() for m in _CREATED.finditer(ddl)})
        try:
            with self._pool.connection() as conn:
                # Nothing to do when every table and index is there: creating them again would
                # still lock their tables, possibly against a transaction of this very thread.
                found = conn.execute(
                    "SELECT bool_and(to_regclass(n) IS NOT NULL) FROM unnest(%s::text[]) AS n",
                    [names],
                ).fetchone()
                if names and found == (True,):
                    self._created.add(ddl)
                    return
            with self._pool.connection() as conn, conn.transaction():
                # Two instances creating one table at once can collide in the catalog.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(_SCHEMA_LOCK)])
                for statement in to_postgres(ddl):
                    conn.execute(statement)
        except psycopg.Error as exc:
            raise _failure("could not create tables", exc) from exc
        self._created.add(ddl)

    # --- locks between instances ----------------------------------------------------------------

    def _lock_connection(self) -> psycopg.Connection[Any]:
        """The connection holding this engine's session locks; reconnected when lost (the locks
        it held are gone then, except the instance's own, which is taken again)."""
        conn = self._locks
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            log.warning(
                "database_lock_connection_lost", database=self.where, lost=sorted(self._held)
            )
            self._close_locks()
        conn = psycopg.connect(self._lock_conninfo, autocommit=True)
        self._locks = conn
        self._held.clear()
        mine = instance_lock(self.instance)
        if conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(mine)]).fetchone() == (True,):
            self._held.add(mine)
        return conn

    def _close_locks(self) -> None:
        conn, self._locks = self._locks, None
        self._held.clear()
        if conn is not None:
            conn.close()

    def try_lock(self, name: str) -> bool:
        with self._lock:
            try:
                conn = self._lock_connection()
                if name in self._held:
                    return True
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(name)]).fetchone()
            except psycopg.Error as exc:
                raise _failure(f"could not take lock {name}", exc) from exc
            if row == (True,):
                self._held.add(name)
                return True
            return False

    def holds(self, name: str) -> bool:
        with self._lock:
            conn = self._locks
            if name not in self._held or conn is None:
                return False
            try:
                conn.execute("SELECT 1")
            except psycopg.Error:
                self._close_locks()
                return False
            return True

    def held(self, name: str) -> bool:
        key = lock_key(name)
        found = self.one(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = ?::bigint::oid AND objid = ?::bigint::oid AND objsubid = 1",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        )
        return found is not None

    def unlock(self, name: str) -> None:
        with self._lock:
            if name not in self._held or self._locks is None:
                return
            self._held.discard(name)
            try:
                self._locks.execute("SELECT pg_advisory_unlock(%s)", [lock_key(name)])
            except psycopg.Error:
                self._close_locks()  # the lock went with the connection

    # --- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Create or migrate the schema, one instance at a time (a session advisory lock)."""
        conn = self._lock_connection()
        schema = resources.files("gateway.store").joinpath("schema.sql").read_text("utf-8")
        conn.execute("SELECT pg_advisory_lock(%s)", [lock_key(_SCHEMA_LOCK)])
        try:
            version = self._version(conn)
            if version is not None and version > SCHEMA_VERSION:
                raise StorageError(
                    f"database {self.where} has schema version {version}, newer than this "
                    f"gateway's {SCHEMA_VERSION}: upgrade gateway"
                )
            if version is not None and version < POSTGRES_SINCE:
                raise StorageError(
                    f"database {self.where} has schema version {version}, older than any "
                    "PostgreSQL database gateway made"
                )
            while version is not None and version < SCHEMA_VERSION:
                with conn.transaction():
                    MIGRATIONS[version](_Translated(conn))
                    conn.execute("UPDATE schema_version SET version = %s", [version + 1])
                log.info("database_migrated", database=self.where, version=version + 1)
                version += 1
            with conn.transaction():
                for statement in to_postgres(schema):
                    conn.execute(statement)
                if version is None:
                    conn.execute(
                        "INSERT INTO schema_version(version) VALUES (%s)", [SCHEMA_VERSION]
                    )
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key(_SCHEMA_LOCK)])

    def _check_version(self) -> None:
        """Read-only: the schema must be this gateway's, as it is (nothing is made or migrated)."""
        version = self._version(self._lock_connection())
        if version != SCHEMA_VERSION:
            raise StorageError(
                f"database {self.where} has schema version {version}, not this gateway's "
                f"{SCHEMA_VERSION}; a read-only look needs the same version (start the daemon "
                "of this version once to migrate it)"
            )

    @staticmethod
    def _version(conn: psycopg.Connection[Any]) -> int | None:
        exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if exists != (True,):
            return None
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        return None if row is None else int(row[0])


@contextmanager
def _looking(url: str, timeout: float) -> Iterator[psycopg.Connection[Any]]:
    """A read-only session with a statement timeout, for a look at a database as it is."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout))) as conn:
            milliseconds = str(int(timeout * 1000))
            conn.execute("SELECT set_config('statement_timeout', %s, false)", [milliseconds])
            conn.execute("SET default_transaction_read_only = on")
            yield conn
    except psycopg.Error as exc:
        raise _failure(describe(url), exc) from exc


def _tables(conn: psycopg.Connection[Any]) -> set[str]:
    return {
        str(name)
        for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }


def probe(url: str, timeout: float) -> tuple[int | None, set[str], int]:
    """Read-only look at a database for ``gateway health``: (schema version, the tables of the
    current schema, the highest received id). Creates and migrates nothing; raises
    ``StorageError`` when the server cannot be reached or read."""
    with _looking(url, timeout) as conn:
        tables = _tables(conn)
        version = None
        if "schema_version" in tables:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = None if row is None or row[0] is None else int(row[0])
        received = 0
        if "received" in tables:
            row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM received").fetchone()
            received = int(row[0]) if row is not None else 0
        return version, tables, received


def look(url: str, timeout: float, sql: str, *, needs: tuple[str, ...]) -> list[Row]:
    """One query on a database as it is, read-only, for ``gateway health``: no rows when a
    table in ``needs`` is not there (yet). ``StorageError`` when the server cannot be reached
    or read."""
    with _looking(url, timeout) as conn:
        if not set(needs) <= _tables(conn):
            return []
        return conn.execute(placeholders(sql)).fetchall()


class PostgresSnapshot(ReadOnlyEngine):
    """A read-only view of the database for a worker process: ``snapshot()`` holds one
    REPEATABLE READ, READ ONLY transaction, so every read inside sees the same committed state
    (as SQLite's read transaction does); outside one, each read is on its own. One connection,
    used by one thread at a time."""

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        self.where = describe(url)
        try:
            self._conn = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, int(connect_timeout))
            )
        except psycopg.Error as exc:
            raise _failure(f"cannot open database {self.where} to read", exc) from exc
        _configure(self._conn)

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """One read transaction; yields the newest received id in it."""
        try:
            with self._conn.transaction():
                self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                row = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM received").fetchone()
                yield int(row[0]) if row is not None else 0
        except psycopg.Error as exc:
            raise _failure(f"cannot read database {self.where}", exc) from exc

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return PostgresTransaction(self._conn).rows(sql, params)
        except psycopg.Error as exc:
            raise _failure("query failed", exc) from exc

    def one(self, sql: str, params: Params = ()) -> Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def close(self) -> None:
        self._conn.close()
