"""The gateway's core configuration, loaded from TOML and validated at load.

Every key is documented in ``config/local.toml`` and in the README. Relative paths in the file are
resolved against the directory the config file lives in, so a config works from any cwd.

The adapters read their own tables of the same file, beside their code, with the same reader
(``gateway.settings.Table``): ``[[imap.mailboxes]]`` (``gateway.inbox.imap.config``),
``[outbox.smtp]`` (``gateway.outbox.smtp.config``) and ``[payout]`` (``gateway.payout.config``).
``Config.table`` hands them their table; ``gateway.adapters.load_config`` reads the core and every
adapter's table at once, so a bad key anywhere stops a command before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.claims.model import Ident, Organisation
from gateway.settings import Table, load_toml
from gateway.store.config import URL_SCHEMES, Database
from gateway.tariffs.model import PRACTITIONER_TYPES


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Who this gateway is: its organisation in MsgHead/AppRec and its ebXML party."""

    name: str
    her_id: str
    enh_id: str | None
    ebxml_role: str
    mail_address: str

    def organisation(self) -> Organisation:
        idents = [Ident(self.her_id, "HER")]
        if self.enh_id:
            idents.append(Ident(self.enh_id, "ENH"))
        return Organisation(name=self.name, idents=tuple(idents))


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """The file-drop inbox: ``incoming/`` is where senders drop files."""

    directory: Path
    poll_interval: float
    max_recoveries: int
    settle_seconds: float = 0.0
    #: Several daemons take files from this one spool (``gateway.inbox.spool_lock``).
    shared: bool = False

    @property
    def incoming(self) -> Path:
        return self.directory / "incoming"

    @property
    def work(self) -> Path:
        return self.directory / "work"

    @property
    def processed(self) -> Path:
        return self.directory / "processed"

    @property
    def bad(self) -> Path:
        return self.directory / "bad"


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """Where replies go. ``kind`` names the outbox (``gateway.adapters.OUTBOX_KINDS``): ``"file"``
    writes ``.eml`` files into ``directory``; ``"smtp"`` mails them through ``[outbox.smtp]``
    (``directory`` still holds payout files)."""

    kind: str
    directory: Path


@dataclass(frozen=True, slots=True)
class SigningConfig:
    """The gateway's signing key and certificate (PEM files; never inline in the config)."""

    key_file: Path
    cert_file: Path


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    """Schema catalog and intake limits."""

    official_schema_dirs: tuple[Path, ...]
    max_message_bytes: int


@dataclass(frozen=True, slots=True)
class PartnersConfig:
    """The partner registry: a directory of CPA files (ebMS 2.0 CPP/CPA XML).

    Without it (the embedded default), ebXML headers are checked against our own identity only,
    and payloads are neither decrypted nor signature-checked."""

    directory: Path | None


@dataclass(frozen=True, slots=True)
class KeyPair:
    key_file: Path
    cert_file: Path


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """Decryption keys (current first, then the previous one during a certificate rollover) and
    what must be signed. Signatures are checked only against certificates from a CPA."""

    decryption: tuple[KeyPair, ...]
    require_signed_msghead: bool
    require_signed_ebxml: bool
    encrypt_replies: bool
    certificate_warn_days: int


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The Prometheus endpoint (localhost by default; port 0 = off)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str
    format: str  # "json" or "console"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the core of ``gateway run`` needs; the adapters' tables are in ``table``."""

    path: Path
    identity: IdentityConfig
    database: Database
    spool: SpoolConfig
    outbox: OutboxConfig
    signing: SigningConfig
    validation: ValidationConfig
    logging: LoggingConfig
    drain_seconds: float = 10.0
    #: Sender HER id -> practitioner type (the operator's practice registry).
    practitioners: dict[str, str] = field(default_factory=dict)
    partners: PartnersConfig = PartnersConfig(directory=None)
    security: SecurityConfig = SecurityConfig(
        decryption=(),
        require_signed_msghead=True,
        require_signed_ebxml=False,
        encrypt_replies=True,
        certificate_warn_days=30,
    )
    metrics: MetricsConfig = MetricsConfig(host="127.0.0.1", port=0)
    #: The whole file, for the adapters that read their own table of it.
    tables: Table | None = field(default=None, repr=False, compare=False)

    def table(self, key: str) -> Table:
        """The table at the dotted ``key`` (``"outbox.smtp"``), empty when absent."""
        found = self.tables or Table({}, base=self.path.parent, source=str(self.path))
        for part in key.split("."):
            found = found.table(part)
        return found

    @classmethod
    def from_toml(cls, path: Path) -> Config:
        """Load and validate ``path``; raise ``ConfigurationError`` naming the bad key."""
        return cls.from_table(load_toml(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], path: Path) -> Config:
        """Validate ``data`` as if read from ``path`` (tests, tools)."""
        path = path.resolve()
        return cls.from_table(Table(data, base=path.parent, source=str(path)))

    @classmethod
    def from_table(cls, root: Table) -> Config:
        """Read the core settings from the file's top-level table."""
        assert root.source is not None  # the file is named in every error
        identity = _identity(root.table("identity"))
        spool = _spool(root.table("spool"))
        outbox = root.table("outbox")
        signing = root.table("signing")
        validation = root.table("validation")
        logging = root.table("logging")
        metrics = root.table("metrics")
        return cls(
            path=Path(root.source),
            identity=identity,
            spool=spool,
            outbox=OutboxConfig(
                kind=outbox.string("kind", "file"), directory=outbox.path("directory")
            ),
            signing=SigningConfig(
                key_file=signing.path("key_file"), cert_file=signing.path("cert_file")
            ),
            validation=ValidationConfig(
                official_schema_dirs=tuple(
                    (root.base / p).resolve() for p in validation.strings("official_schema_dirs")
                ),
                max_message_bytes=validation.integer(
                    "max_message_bytes", 10 * 1024 * 1024, low=1
                ),
            ),
            logging=LoggingConfig(
                level=logging.string("level", "info").lower(),
                format=logging.choice("format", ("json", "console"), "json"),
            ),
            database=_database(root.table("database")),
            drain_seconds=root.table("daemon").number("drain_seconds", 10.0, positive=True),
            practitioners=_practitioners(root),
            partners=PartnersConfig(directory=root.table("partners").opt_path("directory")),
            security=_security(root.table("security")),
            metrics=MetricsConfig(
                host=metrics.string("host", "127.0.0.1"),
                port=metrics.integer(
                    "port", 0, low=0, high=65535, expected="a port number (0 = off)"
                ),
            ),
            tables=root,
        )


def _identity(table: Table) -> IdentityConfig:
    return IdentityConfig(
        name=table.string("name"),
        her_id=table.digits("her_id"),
        enh_id=table.opt_digits("enh_id"),
        ebxml_role=table.string("ebxml_role", "KontrollUtbetaler"),
        mail_address=table.string("mail_address", "gateway@localhost"),
    )


def _database(table: Table) -> Database:
    """``[database]``: ``path`` (a SQLite file) or ``url`` (PostgreSQL), exactly one."""
    table.only(("path", "url", "pool_size"))
    url = table.opt_string("url")
    if url is None:
        return Database(path=table.path("path"))
    if "path" in table:
        raise table.error(f"give {table.key('path')} or {table.key('url')}, not both")
    if not url.startswith(URL_SCHEMES):
        raise table.fail("url", f"a PostgreSQL URL ({' or '.join(URL_SCHEMES)}...)")
    if urlsplit(url).password is not None:
        raise table.error(
            f"{table.key('url')}: the password must not be in the config; put it in "
            "~/.pgpass or a file named by a passfile= parameter of the URL"
        )
    return Database(url=url, pool_size=table.integer("pool_size", 4, low=1, high=64))


def _spool(table: Table) -> SpoolConfig:
    return SpoolConfig(
        directory=table.path("directory"),
        poll_interval=table.number("poll_interval", 1.0, positive=True),
        max_recoveries=table.integer("max_recoveries", 3, low=1),
        settle_seconds=table.number("settle_seconds", 0.5, low=0),
        shared=table.boolean("shared", False),
    )


def _security(table: Table) -> SecurityConfig:
    pairs: list[KeyPair] = []
    for prefix in ("decryption", "previous_decryption"):
        key = table.opt_path(f"{prefix}_key_file")
        cert = table.opt_path(f"{prefix}_cert_file")
        if (key is None) != (cert is None):
            raise table.error(
                f"give both {table.key(prefix)}_key_file and {table.key(prefix)}_cert_file, "
                "or neither"
            )
        if key is not None and cert is not None:
            pairs.append(KeyPair(key, cert))
    if len(pairs) == 1 and "decryption_key_file" not in table:
        raise table.error(
            f"{table.key('previous_decryption')}_* is set without {table.key('decryption')}_*"
        )
    return SecurityConfig(
        decryption=tuple(pairs),
        require_signed_msghead=table.boolean("require_signed_msghead", True),
        require_signed_ebxml=table.boolean("require_signed_ebxml", False),
        encrypt_replies=table.boolean("encrypt_replies", True),
        certificate_warn_days=table.integer("certificate_warn_days", 30, low=1),
    )


def _practitioners(root: Table) -> dict[str, str]:
    """``[practitioners]``: sender HER id = practitioner type."""
    value = root.raw("practitioners")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise root.fail("practitioners", "a table of HER id = practitioner type")
    table = root.table("practitioners")
    result: dict[str, str] = {}
    for her, kind in value.items():
        if not str(her).isdigit():
            raise table.error(f"{table.key(her)} must be keyed by a HER id (digits), got {her!r}")
        if kind not in PRACTITIONER_TYPES:
            raise table.fail(her, f"one of {', '.join(sorted(PRACTITIONER_TYPES))}")
        result[str(her)] = str(kind)
    return result
