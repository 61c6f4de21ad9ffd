"""Console accounts: adding and changing users, logging in with throttling, sessions that
expire, and the audit log every action writes to.

A session is a random token in a cookie; the database keeps only its SHA-256, so a copy of the
database does not let anyone in. A session ends after ``idle`` without a request, at
``max_age`` after login whatever the activity, at logout, and when the user is disabled or gets
a new password.

Throttling: after ``max_failures`` failed logins for one user name within ``window`` (counted
since that name's last success), or ``max_client_failures`` from one address, further attempts
are refused without checking the password until ``window`` has passed since the latest failure.

A user an identity provider vouches for (OIDC, ``gateway.web.oidc``) logs in with
``login_external``: an account named ``oidc:<name>`` without a usable password, its roles the
provider's, and the same sessions, audit lines and throttling (by client address).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.clock import utc_now
from gateway.errors import GatewayError, StorageError
from gateway.records import AuditEntry, UserRecord
from gateway.store.users import ConsoleUsers
from gateway.users.passwords import (
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
    waste_time,
)
from gateway.users.roles import Permission, Role, permissions

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
#: The user names of accounts an identity provider vouches for begin with these (a local user
#: name cannot hold ':'), and their password hash is no hash: no password ever matches it.
EXTERNAL_PREFIX = {"oidc": "oidc:"}
EXTERNAL_HASH = "!external"


class AccountError(GatewayError):
    """A request about an account cannot be done (Norwegian message, shown as it is)."""


class LoginFailed(AccountError):
    """Wrong user name or password, or a disabled user: one answer for all three."""


class LoginThrottled(AccountError):
    """Too many failed attempts; ``retry_after`` says when to try again."""

    def __init__(self, retry_after: timedelta) -> None:
        minutes = max(1, int(retry_after.total_seconds() + 59) // 60)
        super().__init__(
            f"For mange mislykkede innloggingsforsøk. Prøv igjen om {minutes} minutt(er)."
        )
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Policy:
    """Session lifetime and login throttling."""

    idle: timedelta = timedelta(minutes=30)
    max_age: timedelta = timedelta(hours=10)
    max_failures: int = 5
    max_client_failures: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A logged-in user as the console sees it."""

    id: int
    username: str
    display_name: str
    roles: tuple[str, ...]

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions(self.roles)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @classmethod
    def of(cls, record: UserRecord) -> ConsoleUser:
        return cls(record.id, record.username, record.display_name, record.roles)


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: who, its CSRF token, and when it ends at the latest."""

    user: ConsoleUser
    csrf_token: str
    token_hash: str
    expires_at: datetime


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Accounts:
    """Console accounts and sessions on the claims database."""

    def __init__(
        self,
        tables: ConsoleUsers,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.tables = tables
        self.policy = policy or Policy()
        self.clock = clock

    # --- administration (gateway users ...) ------------------------------------------------

    def add(
        self,
        username: str,
        password: str,
        roles: Sequence[Role],
        *,
        display_name: str = "",
        by: str,
    ) -> UserRecord:
        username = username.strip().lower()
        if not _USERNAME.match(username):
            raise AccountError(
                "Brukernavnet må ha 2–64 tegn: små bokstaver a–z, sifre, punktum, bindestrek "
                "og understrek, og begynne med en bokstav eller et siffer."
            )
        if not roles:
            raise AccountError("En bruker må ha minst én rolle.")
        check_policy(password, username)
        try:
            record = self.tables.add_user(
                username, display_name.strip() or username, hash_password(password),
                [r.value for r in roles],
            )
        except StorageError as exc:
            raise AccountError(f"Brukeren {username} finnes allerede.") from exc
        self.audit(by, "user_add", target=username, detail="roller: " + ",".join(record.roles))
        return record

    def _existing(self, username: str) -> UserRecord:
        record = self.tables.user_by_name(username.strip().lower())
        if record is None:
            raise AccountError(f"Fant ingen bruker {username!r}.")
        return record

    def set_roles(self, username: str, roles: Sequence[Role], *, by: str) -> None:
        if not roles:
            raise AccountError("En bruker må ha minst én rolle; bruk disable for å stenge.")
        record = self._existing(username)
        self.tables.update_user(record.id, roles=[r.value for r in roles])
        self.audit(
            by,
            "user_roles",
            target=record.username,
            detail=f"{','.join(record.roles)} -> {','.join(r.value for r in roles)}",
        )

    def set_disabled(self, username: str, disabled: bool, *, by: str) -> None:
        record = self._existing(username)
        self.tables.update_user(record.id, disabled=disabled)
        self.audit(by, "user_disable" if disabled else "user_enable", target=record.username)

    def set_password(self, username: str, password: str, *, by: str) -> None:
        record = self._existing(username)
        if record.password_hash == EXTERNAL_HASH:
            raise AccountError(
                f"{record.username} logger inn gjennom identitetsleverandøren og har ikke passord."
            )
        check_policy(password, record.username)
        self.tables.update_user(record.id, password_hash=hash_password(password))
        self.audit(by, "user_password", target=record.username)

    def users(self) -> list[UserRecord]:
        return self.tables.users()

    # --- logging in and out ----------------------------------------------------------------

    def login(self, username: str, password: str, client: str) -> tuple[str, Session]:
        """Check the password (throttled); on success start a session and return its token
        (for the cookie) and the session."""
        now = self.clock()
        name = username.strip().lower()[:64]
        self._check_throttle(name, client, now)
        record = self.tables.user_by_name(name)
        if record is None or record.disabled:
            waste_time(password)
            ok = False
        else:
            ok = verify_password(record.password_hash, password)
        self.tables.record_login_attempt(name, client, ok, now)
        if not ok or record is None:
            self.audit(name or "-", "login_failed", client=client)
            raise LoginFailed("Feil brukernavn eller passord.")
        if needs_rehash(record.password_hash):
            self.tables.update_user(record.id, password_hash=hash_password(password))
        return self._start_session(record, client, now)

    def _start_session(
        self, record: UserRecord, client: str, now: datetime, *, how: str | None = None
    ) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(
            user=ConsoleUser.of(record),
            csrf_token=secrets.token_urlsafe(32),
            token_hash=token_hash(token),
            expires_at=now + self.policy.max_age,
        )
        self.tables.create_session(
            session.token_hash, record.id, session.csrf_token, session.expires_at, client
        )
        self.audit(record.username, "login", client=client, detail=how)
        return token, session

    def _check_throttle(self, username: str | None, client: str, now: datetime) -> None:
        since = now - self.policy.window
        checks = [
            (*self.tables.failures_since(since, client=client), self.policy.max_client_failures)
        ]
        if username is not None:
            checks.append(
                (*self.tables.failures_since(since, username=username), self.policy.max_failures)
            )
        for count, last, limit in checks:
            if count >= limit and last is not None:
                self.audit(username or "-", "login_throttled", client=client)
                raise LoginThrottled(last + self.policy.window - now)

    # --- logging in through an identity provider (OIDC) --------------------------------------

    def check_external_throttle(self, client: str) -> None:
        """Before a login through the provider: ``LoginThrottled`` when ``client`` failed too
        often (by address only: the user name is not known yet)."""
        self._check_throttle(None, client, self.clock())

    def external_failed(
        self, username: str | None, client: str, reason: str, *, method: str = "oidc"
    ) -> None:
        """A login through the provider failed: counted for throttling and audited."""
        name = username or EXTERNAL_PREFIX.get(method, method + ":")
        self.tables.record_login_attempt(name, client, False, self.clock())
        self.audit(username or "-", "login_failed", client=client, detail=f"{method}: {reason}")

    def login_external(
        self,
        username: str,
        display_name: str,
        roles: Sequence[Role],
        client: str,
        *,
        method: str = "oidc",
    ) -> tuple[str, Session]:
        """A user the identity provider vouched for: their console account is made at the
        first login, takes the provider's roles at every login, and gets a session like a
        password login. A user disabled with ``gateway users disable`` stays out."""
        now = self.clock()
        if not username.startswith(EXTERNAL_PREFIX[method]) or not roles:
            raise AccountError(f"not a {method} user name, or no role: {username!r}")
        wanted = tuple(sorted(r.value for r in roles))
        record = self.tables.user_by_name(username)
        if record is None:
            try:
                record = self.tables.add_user(
                    username, display_name.strip() or username, EXTERNAL_HASH, wanted
                )
            except StorageError:  # made by a parallel first login
                record = self.tables.user_by_name(username)
                if record is None:
                    raise
            else:
                roles_text = "roller: " + ",".join(wanted)
                self.audit(method, "user_add", target=username, detail=roles_text)
        if record.disabled:
            self.external_failed(username, client, "user disabled", method=method)
            raise LoginFailed("Brukeren din er stengt i konsollet. Kontakt drift.")
        if tuple(sorted(record.roles)) != wanted:
            self.tables.update_user(record.id, roles=wanted)
            self.audit(
                method, "user_roles", target=username,
                detail=f"{','.join(record.roles)} -> {','.join(wanted)}",
            )
            record = self.tables.user_by_id(record.id) or record
        self.tables.record_login_attempt(username, client, True, now)
        return self._start_session(record, client, now, how=method)

    def session(self, token: str) -> Session | None:
        """The live session of ``token``, or None (unknown, idle too long, past its end, or
        its user disabled). Ended sessions are removed."""
        if not token or len(token) > 200:
            return None
        hashed = token_hash(token)
        record = self.tables.session(hashed)
        if record is None:
            return None
        now = self.clock()
        user = self.tables.user_by_id(record.user_id)
        if (
            user is None
            or user.disabled
            or now >= record.expires_at
            or now - record.last_seen_at >= self.policy.idle
        ):
            self.tables.delete_session(hashed)
            return None
        if now - record.last_seen_at >= timedelta(seconds=30):
            # Not on every request: one write per half minute is enough for the idle limit.
            self.tables.touch_session(hashed, now)
        return Session(ConsoleUser.of(user), record.csrf_token, hashed, record.expires_at)

    def logout(self, session: Session, client: str) -> None:
        self.tables.delete_session(session.token_hash)
        self.audit(session.user.username, "logout", client=client)

    def purge(self) -> int:
        """Remove ended sessions; returns how many."""
        now = self.clock()
        return self.tables.delete_sessions_before(now - self.policy.idle, now)

    # --- audit -----------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        detail: str | None = None,
        client: str | None = None,
    ) -> None:
        """One line in the audit log: who did what to what, when, from where."""
        self.tables.audit(
            actor, action, target=target, detail=detail, client=client, at=self.clock()
        )

    def audit_entries(
        self, *, limit: int = 100, before_id: int | None = None, actor: str | None = None
    ) -> list[AuditEntry]:
        return self.tables.audit_entries(limit=limit, before_id=before_id, actor=actor)
