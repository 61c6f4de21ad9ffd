"""``gateway validate --decide``: what the daemon would answer, without the daemon's store.

Each file goes through the daemon's own pipeline, built from the config as ``gateway run``
builds it (``gateway.wiring.build_pipeline``): the same unwrap and limits, CPA checks and
signatures, schema, every rule with the tariff data in force and the claims history. It runs
on a **copy** of a SQLite database (made with SQLite's backup from a read-only connection, in a
temporary directory, deleted afterwards), or on a PostgreSQL database itself in read-only
transactions (which the server enforces; its schema must be this gateway's version), and only
``Pipeline.process`` runs, never ``commit``: nothing is written to the real store, and each file
is decided as if it came alone. The answer is shown as the partner reads it: the AppRec
decrypted and unpacked (the daemon sends it packaged as the partner's CPA says).
"""

from __future__ import annotations

import dataclasses
import gzip
import sqlite3
import tempfile
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.adapters import Adapters
from gateway.config import Config
from gateway.ebxml import mime
from gateway.errors import StorageError
from gateway.pipeline import Pipeline
from gateway.practices.legacy import migrate_once
from gateway.processing import Processed
from gateway.receipts.apprec import read_apprec
from gateway.records import Outcome
from gateway.store import Store
from gateway.store.database import open_read_only
from gateway.tariffs.csv_format import TariffFileError
from gateway.tariffs.loading import load_book
from gateway.wiring import attach_revocation, build_pipeline

__all__ = ["Decider", "Decision"]

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the daemon would do with one file."""

    outcome: Outcome
    apprec_status: int | None
    replies: tuple[str, ...]  # the reply kinds, in order
    detail: str | None
    apprec: etree._Element | None  # as the partner reads it (decrypted, unpacked)

    @property
    def fine(self) -> bool:
        """Accepted whole: every bill approved (anything else is not reported as fine)."""
        return self.outcome is Outcome.ACCEPTED

    def errors(self) -> list[dict[str, str | None]]:
        if self.apprec is None:
            return []
        namespace = etree.QName(self.apprec).namespace
        return [
            {name: error.get(name) for name in ("V", "S", "DN", "OT")}
            for error in self.apprec.findall(f"{{{namespace}}}Error")
        ]

    def apprec_xml(self) -> str | None:
        if self.apprec is None:
            return None
        return etree.tostring(self.apprec, pretty_print=True, encoding="unicode")

    def render(self) -> list[str]:
        status = f", AppRec status {self.apprec_status}" if self.apprec_status else ""
        lines = [f"decision: {self.outcome.value}{status}; replies {', '.join(self.replies)}"]
        if self.detail:
            lines.append(f"  why: {self.detail}")
        xml = self.apprec_xml()
        if xml:
            lines.append("  the AppRec the daemon would send (as the partner reads it):")
            lines += [f"    {line}" for line in xml.rstrip().splitlines()]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "apprec_status": self.apprec_status,
            "replies": list(self.replies),
            "detail": self.detail,
            "errors": self.errors(),
            "apprec": self.apprec_xml(),
        }


class Decider:
    """The daemon's pipeline on a throw-away copy of its database; use as a context manager."""

    def __init__(self, config: Config) -> None:
        # The AppRec is shown as the partner reads it: built unencrypted here (its content is
        # the same; the daemon encrypts it to the partner where the CPA says so).
        security = dataclasses.replace(config.security, encrypt_replies=False)
        self.config = dataclasses.replace(config, security=security)
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._store: Store | None = None
        self.pipeline: Pipeline | None = None

    def __enter__(self) -> Decider:
        database = self.config.database
        adapters = Adapters.of(self.config)
        if database.path is None:  # PostgreSQL: its daemons imported any old register at start
            self._store = Store(open_read_only(database))
        else:
            self._directory = tempfile.TemporaryDirectory(prefix="gateway-decide-")
            copy = Path(self._directory.name) / "gateway.sqlite3"
            _copy_database(database.path, copy)
            self._store = Store(copy)
            # As the daemon's start: the old [practitioners]/receivers config becomes the first
            # practice register when none was imported yet (here only in the copy; said by the
            # daemon).
            migrate_once(
                self._store.practices,
                self.config.practitioners,
                adapters.payout.receivers_file,
                self.config.path,
                say=lambda _: None,
            )
        self.pipeline = build_pipeline(self.config, self._store, adapters)
        attach_revocation(adapters.revocation, self.pipeline)
        # As the daemon: without readable tariff data the amount rules stand aside.
        with suppress(TariffFileError):
            self.pipeline.tariffs = load_book(self._store.tariff_imports)
        return self

    def __exit__(self, *_: object) -> None:
        if self._store is not None:
            self._store.close()
        if self._directory is not None:
            self._directory.cleanup()

    def decide(self, name: str, data: bytes, position: int = 0) -> Decision:
        """What the daemon would answer to ``data`` (a file named ``name``)."""
        assert self.pipeline is not None, "use Decider as a context manager"
        processed = self.pipeline.process(
            data, source="validate", source_ref=f"validate:{position}:{name}", source_name=name
        )
        return _decision(processed)


def _decision(processed: Processed) -> Decision:
    answer = processed.answer
    apprec = None
    for reply in answer.replies:
        if reply.kind == "apprec":
            apprec = read_apprec(_document(reply.body))
    return Decision(
        outcome=answer.outcome,
        apprec_status=answer.apprec_status,
        replies=tuple(reply.kind for reply in answer.replies),
        detail=processed.detail,
        apprec=apprec,
    )


def _document(body: bytes) -> bytes:
    """The AppRec document of a reply: the file itself, or the mail's payload part (unpacked)."""
    if body.lstrip().startswith(b"<"):
        return body
    (part,) = mime.unwrap(body).attachments
    return gzip.decompress(part.body) if part.body.startswith(_GZIP_MAGIC) else part.body


def _copy_database(source: Path, target: Path) -> None:
    """``source`` copied to ``target`` through a read-only connection (nothing written to it);
    a database that does not exist yet gives an empty store."""
    if not source.is_file():
        return
    try:
        with (
            closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as db,
            closing(sqlite3.connect(target)) as copy,
        ):
            db.backup(copy)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read database {source} to decide on a copy: {exc}") from exc
