"""Opening the configured claims database (``gateway.store.config.Database``): the SQLite engine
for a file, the PostgreSQL engine for a URL (psycopg is imported only then)."""

from __future__ import annotations

from gateway.store.config import URL_SCHEMES, Database
from gateway.store.engine import Engine

__all__ = ["URL_SCHEMES", "Database", "open_engine", "open_read_only"]


def open_engine(database: Database) -> Engine:
    """The engine on ``database``, created or migrated (``StorageError`` if it fails)."""
    if database.url is not None:
        from gateway.store.postgres import PostgresEngine

        return PostgresEngine(database.url, pool_size=database.pool_size)
    from gateway.store.sqlite import SqliteEngine

    assert database.path is not None  # a Database is a path or a URL
    return SqliteEngine(database.path)


def open_read_only(database: Database) -> Engine:
    """PostgreSQL only: the engine on ``database`` as it is, every transaction read-only on the
    server (``StorageError`` unless its schema is this gateway's version). A SQLite file is
    looked at through a copy instead (``ValueError`` here)."""
    if database.url is None:
        raise ValueError("a read-only engine is for PostgreSQL; copy a SQLite file instead")
    from gateway.store.postgres import PostgresEngine

    return PostgresEngine(database.url, pool_size=database.pool_size, read_only=True)
