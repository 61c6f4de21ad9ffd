"""The one typed configuration object, loaded from TOML and validated at load.

Every key is documented in ``config/local.toml`` and in the README. Relative paths in the file are
resolved against the directory the config file lives in, so a config works from any cwd.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.claims.model import Ident, Organisation
from gateway.errors import ConfigurationError
from gateway.inbox.imap import MailboxConfig, load_mailboxes
from gateway.outbox.smtp import SmtpConfig
from gateway.payout.config import PayoutConfig
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
    """Where replies go. ``kind = "file"`` writes ``.eml`` files into ``directory``;
    ``kind = "smtp"`` mails them through ``[outbox.smtp]`` (``directory`` still holds payout
    files)."""

    kind: str
    directory: Path
    smtp: SmtpConfig | None = None


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
    """Everything ``gateway run`` needs."""

    path: Path
    identity: IdentityConfig
    database: Path
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
    mailboxes: tuple[MailboxConfig, ...] = ()
    metrics: MetricsConfig = MetricsConfig(host="127.0.0.1", port=0)
    payout: PayoutConfig = field(default_factory=PayoutConfig)

    @classmethod
    def from_toml(cls, path: Path) -> Config:
        """Load and validate ``path``; raise ``ConfigurationError`` naming the bad key."""
        path = path.resolve()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc
        return cls.from_mapping(data, path)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], path: Path) -> Config:
        base = path.parent
        r = _Reader(data, str(path))
        identity = IdentityConfig(
            name=r.string("identity.name"),
            her_id=r.digits("identity.her_id"),
            enh_id=r.opt_digits("identity.enh_id"),
            ebxml_role=r.string("identity.ebxml_role", "KontrollUtbetaler"),
            mail_address=r.string("identity.mail_address", "gateway@localhost"),
        )
        spool = SpoolConfig(
            directory=r.path("spool.directory", base),
            poll_interval=r.positive_float("spool.poll_interval", 1.0),
            max_recoveries=r.positive_int("spool.max_recoveries", 3),
            settle_seconds=r.non_negative_float("spool.settle_seconds", 0.5),
        )
        outbox_kind = r.string("outbox.kind", "file")
        if outbox_kind not in ("file", "smtp"):
            raise ConfigurationError(
                f"{path}: outbox.kind = {outbox_kind!r} is not supported ('file' or 'smtp')"
            )
        smtp_table = r.raw("outbox.smtp")
        if outbox_kind == "smtp" and not isinstance(smtp_table, dict):
            raise ConfigurationError(f"{path}: outbox.kind = 'smtp' needs an [outbox.smtp] table")
        outbox = OutboxConfig(
            kind=outbox_kind,
            directory=r.path("outbox.directory", base),
            smtp=(
                SmtpConfig.from_mapping(smtp_table, base)
                if outbox_kind == "smtp" and isinstance(smtp_table, dict)
                else None
            ),
        )
        signing = SigningConfig(
            key_file=r.path("signing.key_file", base),
            cert_file=r.path("signing.cert_file", base),
        )
        validation = ValidationConfig(
            official_schema_dirs=tuple(
                (base / p).resolve() for p in r.str_list("validation.official_schema_dirs", [])
            ),
            max_message_bytes=r.positive_int("validation.max_message_bytes", 10 * 1024 * 1024),
        )
        log_format = r.string("logging.format", "json")
        if log_format not in ("json", "console"):
            raise ConfigurationError(f"{path}: logging.format must be 'json' or 'console'")
        logging = LoggingConfig(level=r.string("logging.level", "info").lower(), format=log_format)
        payout_table = r.raw("payout")
        if payout_table is not None and not isinstance(payout_table, dict):
            raise ConfigurationError(f"{path}: [payout] must be a table")
        try:
            payout = PayoutConfig.from_mapping(
                payout_table if isinstance(payout_table, dict) else {}, base
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}: {exc}") from exc
        return cls(
            path=path,
            identity=identity,
            database=r.path("database.path", base),
            spool=spool,
            outbox=outbox,
            signing=signing,
            validation=validation,
            logging=logging,
            drain_seconds=r.positive_float("daemon.drain_seconds", 10.0),
            practitioners=r.practitioners("practitioners"),
            partners=PartnersConfig(directory=r.opt_path("partners.directory", base)),
            security=_security(r, base),
            mailboxes=load_mailboxes(r.raw("imap.mailboxes"), base),
            metrics=MetricsConfig(
                host=r.string("metrics.host", "127.0.0.1"),
                port=r.port("metrics.port", 0),
            ),
            payout=payout,
        )


def _security(r: _Reader, base: Path) -> SecurityConfig:
    pairs: list[KeyPair] = []
    for prefix in ("security.decryption", "security.previous_decryption"):
        key = r.opt_path(f"{prefix}_key_file", base)
        cert = r.opt_path(f"{prefix}_cert_file", base)
        if (key is None) != (cert is None):
            raise ConfigurationError(
                f"{r.source}: give both {prefix}_key_file and {prefix}_cert_file, or neither"
            )
        if key is not None and cert is not None:
            pairs.append(KeyPair(key, cert))
    if len(pairs) == 1 and r.raw("security.decryption_key_file") is None:
        raise ConfigurationError(
            f"{r.source}: security.previous_decryption_* is set without security.decryption_*"
        )
    return SecurityConfig(
        decryption=tuple(pairs),
        require_signed_msghead=r.boolean("security.require_signed_msghead", True),
        require_signed_ebxml=r.boolean("security.require_signed_ebxml", False),
        encrypt_replies=r.boolean("security.encrypt_replies", True),
        certificate_warn_days=r.positive_int("security.certificate_warn_days", 30),
    )


class _Reader:
    """Typed access to dotted keys with error messages that name the key and the file."""

    _MISSING = object()

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self._data = data
        self._source = source

    def _get(self, key: str, default: object = _MISSING) -> object:
        node: object = self._data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is self._MISSING:
                    raise ConfigurationError(f"{self._source}: missing required key {key!r}")
                return default
            node = node[part]
        return node

    def _fail(self, key: str, expected: str, value: object) -> ConfigurationError:
        return ConfigurationError(f"{self._source}: {key} must be {expected}, got {value!r}")

    @property
    def source(self) -> str:
        return self._source

    def raw(self, key: str) -> object:
        """The value at ``key`` as TOML gave it, or None (validated by its owner)."""
        return self._get(key, None)

    def opt_path(self, key: str, base: Path) -> Path | None:
        if self._get(key, None) is None:
            return None
        return self.path(key, base)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def port(self, key: str, default: int) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise self._fail(key, "a port number (0 = off)", value)
        return value

    def string(self, key: str, default: object = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty string", value)
        return value

    def digits(self, key: str) -> str:
        value = self._get(key)
        if isinstance(value, int):
            value = str(value)
        if not isinstance(value, str) or not value.isdigit():
            raise self._fail(key, "a string of digits", value)
        return value

    def opt_digits(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is None:
            return None
        return self.digits(key)

    def path(self, key: str, base: Path) -> Path:
        return (base / self.string(key)).resolve()

    def positive_float(self, key: str, default: float) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._fail(key, "a positive number", value)
        return float(value)

    def non_negative_float(self, key: str, default: float) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self._fail(key, "a number of at least 0", value)
        return float(value)

    def positive_int(self, key: str, default: int) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self._fail(key, "a positive integer", value)
        return value

    def practitioners(self, key: str) -> dict[str, str]:
        value = self._get(key, {})
        if not isinstance(value, dict):
            raise self._fail(key, "a table of HER id = practitioner type", value)
        result: dict[str, str] = {}
        for her, kind in value.items():
            if not str(her).isdigit():
                raise self._fail(f"{key}.{her}", "keyed by a HER id (digits)", her)
            if kind not in PRACTITIONER_TYPES:
                raise self._fail(
                    f"{key}.{her}", f"one of {', '.join(sorted(PRACTITIONER_TYPES))}", kind
                )
            result[str(her)] = str(kind)
        return result

    def str_list(self, key: str, default: list[str]) -> list[str]:
        value = self._get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings", value)
        return list(value)
