"""``[database]``: which database the claims store is on, a SQLite file or a PostgreSQL server.

The config names exactly one: ``path`` (SQLite, the embedded default of ``make run``; one
machine) or ``url`` (``postgresql://user@host:5432/gateway``: several instances on one
database; the password belongs in ``~/.pgpass``, ``PGPASSFILE`` or a ``passfile=`` parameter,
never in the config). This module only describes it (a settings module: read from anywhere);
``gateway.store.database`` opens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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
        """For messages and logs: the file, or the server(s) and database (never a password)."""
        if self.url is None:
            return str(self.path)
        parts = urlsplit(self.url)
        hosts = parts.netloc.rpartition("@")[2] or "local socket"
        return f"postgresql://{parts.username or ''}@{hosts}/{parts.path.lstrip('/')}"
