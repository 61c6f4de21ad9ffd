"""The web console's own tables (``gateway.users``): users, sessions, the audit log and login
attempts.

The tables reference nothing else in the claims database; ``schema.sql`` describes them (schema
3) and ``migrations.py`` adds them to an older database. Nothing here holds a password or a
session token in the clear: ``password_hash`` is argon2id, ``token_hash`` a SHA-256.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from gateway.errors import StorageError
from gateway.records import AuditEntry, SessionRecord, UserRecord
from gateway.store.engine import Engine
from gateway.store.rows import Columns, field, filtered, moment, opt_moment, opt_str, stored_moment

__all__ = ["ConsoleUsers"]

#: How long a login attempt is kept: older ones no longer count for anything.
_ATTEMPTS_KEPT = timedelta(days=1)


def _roles(stored: object) -> tuple[str, ...]:
    return tuple(x for x in str(stored).split(",") if x)


_USER = Columns(
    UserRecord,
    (
        field("id", int),
        field("username"),
        field("display_name"),
        field("password_hash"),
        field("roles", _roles),
        field("disabled", bool),
        field("created_at", moment),
        field("updated_at", moment),
    ),
)

_SESSION = Columns(
    SessionRecord,
    (
        field("token_hash"),
        field("user_id", int),
        field("csrf_token"),
        field("created_at", moment),
        field("last_seen_at", moment),
        field("expires_at", moment),
    ),
)

_AUDIT = Columns(
    AuditEntry,
    (
        field("id", int),
        field("at", moment, '"at"'),
        field("actor"),
        field("action"),
        field("target", opt_str),
        field("detail", opt_str),
        field("client", opt_str),
    ),
)


class ConsoleUsers:
    """Console users, their sessions and login attempts, and the audit log."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- users ----------------------------------------------------------------------------------

    def add_user(
        self, username: str, display_name: str, password_hash: str, roles: Sequence[str]
    ) -> UserRecord:
        """A new user; ``StorageError`` if the user name is taken."""
        now = stored_moment()
        with self._engine.transaction(f"could not add user {username!r}") as tx:
            # The transaction holds the write lock: nobody adds the name in between.
            if tx.one("SELECT 1 FROM console_users WHERE username = ?", (username,)):
                raise StorageError(f"user {username!r} exists")
            user_id = tx.insert(
                "INSERT INTO console_users(username, display_name, password_hash, roles, "
                "disabled, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?) RETURNING id",
                (username, display_name, password_hash, ",".join(roles), now, now),
            )
        found = self.user_by_id(user_id)
        assert found is not None
        return found

    def user_by_name(self, username: str) -> UserRecord | None:
        return _USER.fetch_one(
            self._engine, "FROM console_users WHERE username = ?", (username,)
        )

    def user_by_id(self, user_id: int) -> UserRecord | None:
        return _USER.fetch_one(self._engine, "FROM console_users WHERE id = ?", (user_id,))

    def users(self) -> list[UserRecord]:
        return _USER.fetch(self._engine, "FROM console_users ORDER BY username")

    def update_user(
        self,
        user_id: int,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> None:
        """Change what is given; disabling or a new password also ends the user's sessions."""
        changes: list[tuple[str, object]] = [("updated_at", stored_moment())]
        if roles is not None:
            changes.append(("roles", ",".join(roles)))
        if disabled is not None:
            changes.append(("disabled", int(disabled)))
        if password_hash is not None:
            changes.append(("password_hash", password_hash))
        assignments = ", ".join(f"{column} = ?" for column, _ in changes)
        with self._engine.transaction(f"could not change user {user_id}") as tx:
            tx.execute(
                f"UPDATE console_users SET {assignments} WHERE id = ?",
                (*(value for _, value in changes), user_id),
            )
            if disabled or password_hash is not None:
                tx.execute("DELETE FROM console_sessions WHERE user_id = ?", (user_id,))

    # --- sessions -------------------------------------------------------------------------------

    def create_session(
        self, token_hash: str, user_id: int, csrf_token: str, expires_at: datetime, client: str
    ) -> None:
        now = stored_moment()
        with self._engine.transaction("could not start a session") as tx:
            tx.execute(
                "INSERT INTO console_sessions(token_hash, user_id, csrf_token, created_at, "
                "last_seen_at, expires_at, client) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_hash, user_id, csrf_token, now, now, stored_moment(expires_at), client),
            )

    def session(self, token_hash: str) -> SessionRecord | None:
        return _SESSION.fetch_one(
            self._engine, "FROM console_sessions WHERE token_hash = ?", (token_hash,)
        )

    def touch_session(self, token_hash: str, at: datetime) -> None:
        with self._engine.transaction("could not note a session's activity") as tx:
            tx.execute(
                "UPDATE console_sessions SET last_seen_at = ? WHERE token_hash = ?",
                (stored_moment(at), token_hash),
            )

    def delete_session(self, token_hash: str) -> None:
        with self._engine.transaction("could not end a session") as tx:
            tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))

    def delete_sessions_before(self, idle_before: datetime, now: datetime) -> int:
        """Remove sessions idle since before ``idle_before`` or past their absolute end."""
        with self._engine.transaction("could not remove ended sessions") as tx:
            return tx.execute(
                "DELETE FROM console_sessions WHERE last_seen_at < ? OR expires_at <= ?",
                (stored_moment(idle_before), stored_moment(now)),
            )

    # --- login throttling -----------------------------------------------------------------------

    def record_login_attempt(self, username: str, client: str, ok: bool, at: datetime) -> None:
        with self._engine.transaction("could not record a login attempt") as tx:
            tx.execute(
                'INSERT INTO login_attempts("at", username, client, ok) VALUES (?, ?, ?, ?)',
                (stored_moment(at), username, client, int(ok)),
            )
            # Keep the table small: attempts older than a day no longer count for anything.
            tx.execute(
                'DELETE FROM login_attempts WHERE "at" < ?', (stored_moment(at - _ATTEMPTS_KEPT),)
            )

    def failures_since(
        self, since: datetime, *, username: str | None = None, client: str | None = None
    ) -> tuple[int, datetime | None]:
        """Failed attempts since ``since`` by user name or by client (since the last success
        of that user name or client), and the latest one's time."""
        column, value = ("username", username) if username is not None else ("client", client)
        found = self._engine.one(
            f'SELECT COUNT(*), MAX("at") FROM login_attempts WHERE {column} = ? AND ok = 0 '
            f'AND "at" >= ? AND "at" > COALESCE((SELECT MAX("at") FROM login_attempts '
            f"WHERE {column} = ? AND ok = 1), '')",
            (value, stored_moment(since), value),
        )
        assert found is not None  # an aggregate always gives a row
        return int(found[0]), opt_moment(found[1])

    # --- audit ----------------------------------------------------------------------------------

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
        with self._engine.transaction("could not write the audit log") as tx:
            tx.execute(
                'INSERT INTO audit_log("at", actor, action, target, detail, client) '
                "VALUES (?, ?, ?, ?, ?, ?)",
                (stored_moment(at), actor, action, target, detail, client),
            )

    def audit_entries(
        self, *, limit: int = 100, before_id: int | None = None, actor: str | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before_id`` pages back."""
        where, params = filtered(
            (("id < ?", before_id), ("actor = ?", actor or None)), "id DESC", limit
        )
        return _AUDIT.fetch(self._engine, "FROM audit_log " + where, params)
