"""``[outbox.smtp]``: where and how the SMTP outbox sends (read when ``outbox.kind = "smtp"``).

Read with ``gateway.settings.Table``; every error names the key (``outbox.smtp.port``). The
password is never in the config: it is read from ``password_file`` or the environment variable
``password_env`` when connecting (the outbox reads it once at start, so a missing one stops it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.settings import Table, read_secret

Security = Literal["tls", "starttls", "none"]
SECURITY: tuple[Security, ...] = ("tls", "starttls", "none")
#: The usual port of each kind of security.
PORTS: Mapping[str, int] = {"tls": 465, "starttls": 587, "none": 25}


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """``[outbox.smtp]``: where and how to send."""

    host: str
    from_address: str  # the SMTP envelope sender (MAIL FROM)
    port: int = 587
    security: Security = "starttls"
    user: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    ca_file: Path | None = None  # extra trust anchors (a private CA); default: the system's
    timeout: float = 30.0
    connections: int = 1
    backoff_base: float = 5.0  # seconds before the first retry; doubled per failure
    backoff_max: float = 600.0
    max_attempts: int = 50  # transient failures before a row is given up (0: never)
    poll_interval: float = 5.0
    idle_close: float = 60.0

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], base: Path, *, prefix: str = "outbox.smtp"
    ) -> SmtpConfig:
        """Read the ``[outbox.smtp]`` table; relative paths are against ``base``."""
        return cls.from_table(Table(data, base=base, where=prefix))

    @classmethod
    def from_table(cls, t: Table) -> SmtpConfig:
        """Read the ``[outbox.smtp]`` table; raise ``ConfigurationError`` naming the key."""
        t.no_password(instead=f"use {t.key('password_file')} or {t.key('password_env')}")
        t.only(_KEYS)
        security = t.choice("security", SECURITY, "starttls")
        sender = t.string("from_address")
        if "@" not in sender:
            raise t.fail("from_address", "a mail address")
        user = t.opt_string("user")
        password_file = t.existing_file("password_file")
        password_env = t.opt_string("password_env")
        if password_file is not None and password_env is not None:
            raise t.error(f"{t.key('password_file')} and {t.key('password_env')}: give only one")
        has_password = password_file is not None or password_env is not None
        if user is not None and not has_password:
            raise t.error(
                f"{t.key('user')} is set: give {t.key('password_file')} or {t.key('password_env')}"
            )
        if user is None and has_password:
            raise t.error(f"a password source is given: {t.key('user')} is missing")
        config = cls(
            host=t.string("host"),
            from_address=sender,
            port=t.integer("port", PORTS[security], low=1, high=65535),
            security=security,
            user=user,
            password_file=password_file,
            password_env=password_env,
            ca_file=t.existing_file("ca_file"),
            timeout=t.number("timeout", 30.0, low=0.1),
            connections=t.integer("connections", 1, low=1, high=4),
            backoff_base=t.number("backoff_base", 5.0, low=0.001),
            backoff_max=t.number("backoff_max", 600.0, low=0.001),
            max_attempts=t.integer("max_attempts", 50, low=0),
            poll_interval=t.number("poll_interval", 5.0, low=0.01),
            idle_close=t.number("idle_close", 60.0, low=0.1),
        )
        if config.backoff_max < config.backoff_base:
            raise t.fail("backoff_max", f"at least backoff_base ({config.backoff_base})")
        return config

    def password(self) -> str | None:
        """The SMTP password, read now from its file or environment variable (None: no login)."""
        if self.password_file is None and self.password_env is None:
            return None
        return read_secret(self.password_file, self.password_env, what="SMTP password")


_KEYS = frozenset(f.name for f in dataclasses.fields(SmtpConfig))
