"""Running one delivery and the delivery log: who, when, what, under which legal basis, how many
rows, and the SHA-256 of the bytes (a repeat must give the same).

The log is its own table on the claims database (``delivery_log``, through its own connection,
like the payout ledger); a row is never changed. ``delivery_fires`` records each scheduled fire
time claimed, so a fire is delivered once even with two daemons on one database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from gateway.clock import utc_now
from gateway.deliveries.config import DeliveriesConfig, Extract
from gateway.deliveries.extracts import make_extract
from gateway.files import write_atomically
from gateway.logs import get_logger
from gateway.store.engine import Engine

__all__ = ["SCHEMA", "LogEntry", "deliver", "log_entries"]

log = get_logger("deliveries")

SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_log (
    id            INTEGER PRIMARY KEY,
    delivery      TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    legal_basis   TEXT    NOT NULL,
    recipient     TEXT    NOT NULL,
    period        TEXT    NOT NULL,
    requested_by  TEXT    NOT NULL,            -- 'scheduler' or the operator's name
    at            TEXT    NOT NULL,            -- UTC
    rows          INTEGER NOT NULL,
    sha256        TEXT    NOT NULL,
    file          TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS delivery_fires (
    delivery   TEXT NOT NULL,
    fire_time  TEXT NOT NULL,                  -- UTC
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (delivery, fire_time)
);
"""


@dataclass(frozen=True, slots=True)
class LogEntry:
    delivery: str
    kind: str
    legal_basis: str
    recipient: str
    period: str
    requested_by: str
    at: str
    rows: int
    sha256: str
    file: str


def deliver(
    db: Engine,
    config: DeliveriesConfig,
    extract: Extract,
    period: str,
    *,
    by: str,
    mirror: Path | None = None,
) -> LogEntry:
    """Make ``extract`` for ``period``, write it to its folder and log it (``mirror``: the
    statistics mirror's directory)."""
    if config.directory is None:
        raise ValueError("deliveries.directory is not configured")
    secret = config.key(extract.key).secret() if extract.key is not None else None
    made = make_extract(db, extract, period, secret=secret, mirror=mirror)
    folder = config.directory / extract.name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{extract.name}-{period}.csv"
    write_atomically(target, made.content, sync_dir=True)
    entry = LogEntry(
        extract.name,
        extract.kind,
        extract.legal_basis,
        extract.recipient,
        period,
        by,
        utc_now().isoformat(),
        made.rows,
        hashlib.sha256(made.content).hexdigest(),
        str(target),
    )
    db.create_tables(SCHEMA)
    with db.transaction(f"could not log delivery {extract.name}") as tx:
        tx.execute(
            "INSERT INTO delivery_log(delivery, kind, legal_basis, recipient, period, "
            "requested_by, at, rows, sha256, file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.delivery,
                entry.kind,
                entry.legal_basis,
                entry.recipient,
                entry.period,
                entry.requested_by,
                entry.at,
                entry.rows,
                entry.sha256,
                entry.file,
            ),
        )
    log.info(
        "delivery_written",
        delivery=extract.name,
        kind=extract.kind,
        period=period,
        rows=made.rows,
        by=by,
        legal_basis=extract.legal_basis,
    )
    return entry


def log_entries(db: Engine, delivery: str | None = None) -> list[LogEntry]:
    """The log, oldest first (of one delivery, or all)."""
    db.create_tables(SCHEMA)
    columns = (
        "SELECT delivery, kind, legal_basis, recipient, period, requested_by, at, rows, "
        "sha256, file FROM delivery_log "
    )
    if delivery is None:
        rows = db.rows(columns + "ORDER BY id")
    else:
        rows = db.rows(columns + "WHERE delivery = ? ORDER BY id", (delivery,))
    return [
        LogEntry(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            str(r[4]),
            str(r[5]),
            str(r[6]),
            int(r[7]),
            str(r[8]),
            str(r[9]),
        )
        for r in rows
    ]
