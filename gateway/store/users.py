"""The console's own tables: users, sessions, the audit log and login attempts (schema 3).

Small and self-contained: the tables reference nothing else in the claims database, and every
read and write goes through the ``Store``'s connection (``_transaction``/``_query``), so they
share its lock, its WAL and its migrations. ``gateway.store.migrations`` creates them in the step
from version 2 to 3; ``ConsoleTables`` creates them too (``CREATE ... IF NOT EXISTS``) when it is
opened on a database made new, since ``schema.sql`` does not describe them.

Times are UTC ISO 8601 text, one format, so text order is time order. Nothing here holds a
password or a session token in the clear: ``password_hash`` is argon2, ``token_hash`` a SHA-256.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.errors import StorageError
from gateway.store.sqlite import Store

#: The statements of schema 3, one at a time (``executescript`` would commit a migration's
#: transaction halfway).
STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS console_users (
        id                   INTEGER PRIMARY KEY,
        username             TEXT    NOT NULL UNIQUE,
        display_name         TEXT    NOT NULL,
        password_hash        TEXT    NOT NULL,      -- argon2id, encoded with its parameters
        roles                TEXT    NOT NULL,      -- comma-separated: saksbehandler,drift,revisor
        disabled             INTEGER NOT NULL DEFAULT 0,
        created_at           TEXT    NOT NULL,
        updated_at           TEXT    NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS console_sessions (
        token_hash    TEXT    PRIMARY KEY,          -- SHA-256 of the cookie's token
        user_id       INTEGER NOT NULL REFERENCES console_users(id),
        csrf_token    TEXT    NOT NULL,
        created_at    TEXT    NOT NULL,
        last_seen_at  TEXT    NOT NULL,
        expires_at    TEXT    NOT NULL,             -- absolute end, whatever the activity
        client        TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions(user_id)",
    """CREATE TABLE IF NOT EXISTS audit_log (
        id       INTEGER PRIMARY KEY,
        at       TEXT    NOT NULL,
        actor    TEXT    NOT NULL,                  -- console user name, or cli:<login>
        action   TEXT    NOT NULL,                  -- e.g. login, override, requeue
        target   TEXT,                              -- what it was done to (bill 12, reply 7)
        detail   TEXT,                              -- never a national id
        client   TEXT                               -- the remote address, for the console
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log(at)",
    """CREATE TABLE IF NOT EXISTS login_attempts (
        id        INTEGER PRIMARY KEY,
        at        TEXT    NOT NULL,
        username  TEXT    NOT NULL,
        client    TEXT    NOT NULL,
        ok        INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS login_attempts_user ON login_attempts(username, at)",
    "CREATE INDEX IF NOT EXISTS login_attempts_client ON login_attempts(client, at)",
)


def create_tables(db: sqlite3.Connection) -> None:
    """Create the console tables on ``db`` (inside the caller's transaction)."""
    for statement in STATEMENTS:
        db.execute(statement)


def iso(moment: datetime | None = None) -> str:
    """A moment (default now) as stored: UTC ISO 8601 with microseconds."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def _time(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    display_name: str
    password_hash: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    token_hash: str
    user_id: int
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: str | None
    client: str | None


_USER = (
    "SELECT id, username, display_name, password_hash, roles, disabled, created_at, "
    "updated_at FROM console_users "
)


def _user(r: sqlite3.Row) -> UserRecord:
    return UserRecord(
        id=int(r[0]),
        username=str(r[1]),
        display_name=str(r[2]),
        password_hash=str(r[3]),
        roles=tuple(x for x in str(r[4]).split(",") if x),
        disabled=bool(r[5]),
        created_at=_time(r[6]),
        updated_at=_time(r[7]),
    )


class ConsoleTables:
    """Reads and writes of the console tables, on a ``Store``'s connection."""

    def __init__(self, store: Store) -> None:
        self._store = store
        with self._write() as db:
            create_tables(db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The store's ``BEGIN IMMEDIATE`` transaction, SQLite errors as ``StorageError``."""
        try:
            with self._store._transaction() as db:
                yield db
        except sqlite3.Error as exc:
            raise StorageError(f"console tables: {exc}") from exc

    # --- users -----------------------------------------------------------------------------

    def add_user(
        self, username: str, display_name: str, password_hash: str, roles: Sequence[str]
    ) -> UserRecord:
        now = iso()
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO console_users(username, display_name, password_hash, roles, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (username, display_name, password_hash, ",".join(roles), now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise StorageError(f"user {username!r} exists") from exc
        found = self.user_by_name(username)
        assert found is not None
        return found

    def user_by_name(self, username: str) -> UserRecord | None:
        rows = self._store._query(_USER + "WHERE username = ?", (username,))
        return _user(rows[0]) if rows else None

    def user_by_id(self, user_id: int) -> UserRecord | None:
        rows = self._store._query(_USER + "WHERE id = ?", (user_id,))
        return _user(rows[0]) if rows else None

    def users(self) -> list[UserRecord]:
        return [_user(r) for r in self._store._query(_USER + "ORDER BY username")]

    def update_user(
        self,
        user_id: int,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> None:
        """Change what is given; disabling or a new password also ends the user's sessions."""
        sets: list[str] = ["updated_at = ?"]
        params: list[object] = [iso()]
        if roles is not None:
            sets.append("roles = ?")
            params.append(",".join(roles))
        if disabled is not None:
            sets.append("disabled = ?")
            params.append(int(disabled))
        if password_hash is not None:
            sets.append("password_hash = ?")
            params.append(password_hash)
        with self._write() as db:
            db.execute(
                f"UPDATE console_users SET {', '.join(sets)} WHERE id = ?", (*params, user_id)
            )
            if disabled or password_hash is not None:
                db.execute("DELETE FROM console_sessions WHERE user_id = ?", (user_id,))

    # --- sessions --------------------------------------------------------------------------

    def create_session(
        self, token_hash: str, user_id: int, csrf_token: str, expires_at: datetime, client: str
    ) -> None:
        now = iso()
        with self._write() as db:
            db.execute(
                "INSERT INTO console_sessions(token_hash, user_id, csrf_token, created_at, "
                "last_seen_at, expires_at, client) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_hash, user_id, csrf_token, now, now, iso(expires_at), client),
            )

    def session(self, token_hash: str) -> SessionRecord | None:
        rows = self._store._query(
            "SELECT token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at "
            "FROM console_sessions WHERE token_hash = ?",
            (token_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return SessionRecord(
            str(r[0]), int(r[1]), str(r[2]), _time(r[3]), _time(r[4]), _time(r[5])
        )

    def touch_session(self, token_hash: str, at: datetime) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE console_sessions SET last_seen_at = ? WHERE token_hash = ?",
                (iso(at), token_hash),
            )

    def delete_session(self, token_hash: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))

    def delete_sessions_before(self, idle_before: datetime, now: datetime) -> int:
        """Remove sessions idle since before ``idle_before`` or past their absolute end."""
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM console_sessions WHERE last_seen_at < ? OR expires_at <= ?",
                (iso(idle_before), iso(now)),
            )
            return int(cur.rowcount)

    # --- login throttling ------------------------------------------------------------------

    def record_login_attempt(self, username: str, client: str, ok: bool, at: datetime) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO login_attempts(at, username, client, ok) VALUES (?, ?, ?, ?)",
                (iso(at), username, client, int(ok)),
            )
            # Keep the table small: attempts older than a day no longer count for anything.
            db.execute("DELETE FROM login_attempts WHERE at < datetime(?, '-1 day')", (iso(at),))

    def failures_since(self, since: datetime, *, username: str | None = None,
                       client: str | None = None) -> tuple[int, datetime | None]:
        """Failed attempts since ``since`` by user name or by client (since the last success
        of that user name), and the latest one's time."""
        column, value = ("username", username) if username is not None else ("client", client)
        rows = self._store._query(
            f"SELECT COUNT(*), MAX(at) FROM login_attempts WHERE {column} = ? AND ok = 0 "
            f"AND at >= ? AND at > COALESCE((SELECT MAX(at) FROM login_attempts "
            f"WHERE {column} = ? AND ok = 1), '')",
            (value, iso(since), value),
        )
        count, last = rows[0]
        return int(count), None if last is None else _time(last)

    # --- audit -----------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        detail: str | None = None,
        client: str | None = None,
        at: datetime | None = None,
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO audit_log(at, actor, action, target, detail, client) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (iso(at), actor, action, target, detail, client),
            )

    def audit_entries(self, *, limit: int = 100, before_id: int | None = None,
                      actor: str | None = None) -> list[AuditEntry]:
        """Newest first; ``before_id`` pages back."""
        where: list[str] = []
        params: list[object] = []
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        if actor:
            where.append("actor = ?")
            params.append(actor)
        sql = "SELECT id, at, actor, action, target, detail, client FROM audit_log "
        if where:
            sql += "WHERE " + " AND ".join(where) + " "
        rows = self._store._query(sql + "ORDER BY id DESC LIMIT ?", (*params, limit))
        return [
            AuditEntry(int(r[0]), _time(r[1]), str(r[2]), str(r[3]),
                       None if r[4] is None else str(r[4]),
                       None if r[5] is None else str(r[5]),
                       None if r[6] is None else str(r[6]))
            for r in rows
        ]
