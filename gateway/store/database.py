"""Which database the claims store is on: a SQLite file, or a PostgreSQL server.

``[database]`` in the config names exactly one: ``path`` (SQLite, the embedded default of
``make run``; one machine) or ``url`` (``postgresql://user@host:5432/gateway``: several
instances on one database; the password belongs in ``~/.pgpass``, ``PGPASSFILE`` or a
``passfile=`` parameter, never in the config). ``Database.open`` gives the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.store.engine import Engine

__all__ = ["URL_SCHEMES", "Database"]

#: The URL schemes ``database.url`` accepts (libpq's).
URL_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class Database:
    """Where the claims database is: ``path`` (SQLite) or ``url`` (PostgreSQL)."""

    path: Path | None = None
    url: str | None = None
    #: PostgreSQL: connections per instance (the pipeline, the outbox, payout, health, ...).
    pool_size: int = 4

    def __post_init__(self) -> None:
        if (self.path is None) == (self.url is None):
            raise ValueError("a database is a path or a URL, exactly one of them")

    @classmethod
    def at(cls, where: str | Path) -> Database:
        """A database from a PostgreSQL URL or a SQLite file's path (tools, tests)."""
        if isinstance(where, str) and where.startswith(URL_SCHEMES):
            return cls(url=where)
        return cls(path=Path(where))

    def __str__(self) -> str:
        """The URL or the path, as ``Database.at`` takes it (a URL with no password)."""
        return self.url if self.url is not None else str(self.path)

    @property
    def is_postgresql(self) -> bool:
        return self.url is not None

    def describe(self) -> str:
        """For messages and logs: the file, or the server and database (never a password)."""
        if self.url is not None:
            from gateway.store.postgres import describe  # psycopg only where it is used

            return describe(self.url)
        return str(self.path)

    def open_read_only(self) -> Engine:
        """PostgreSQL only: the engine on this database as it is, every transaction read-only
        on the server (``StorageError`` unless its schema is this gateway's version). A SQLite
        file is looked at through a copy instead (``ValueError`` here)."""
        if self.url is None:
            raise ValueError("a read-only engine is for PostgreSQL; copy a SQLite file instead")
        from gateway.store.postgres import PostgresEngine

        return PostgresEngine(self.url, pool_size=self.pool_size, read_only=True)

    def open(self) -> Engine:
        """The engine on this database, created or migrated (``StorageError`` if it fails)."""
        if self.url is not None:
            from gateway.store.postgres import PostgresEngine

            return PostgresEngine(self.url, pool_size=self.pool_size)
        from gateway.store.sqlite import SqliteEngine

        assert self.path is not None  # checked in __post_init__
        return SqliteEngine(self.path)
