"""Retention in the store: which received messages and replies may give up their bytes, and
where the bytes are once ``gateway retention archive`` has moved them into archive files.

A received message may give up its bytes (and its replies theirs) when it is older than the
cut-off, every reply it produced was delivered and is acknowledged, expired or never awaited an
acknowledgment, and none of its bills waits for manual control. Whether its bills are settled
is the payout ledger's answer (``gateway.payout.ledger.plan``), which the caller passes in.
Duplicate detection reads keys and hashes (``received.sha256``, the ``messages`` keys), which
stay. The row keeps its SHA-256, size and the archive file and member its bytes now are in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.errors import StorageError
from gateway.store.engine import Engine, Reader
from gateway.store.rows import marks, stored_moment

__all__ = [
    "ArchivedBytes",
    "ArchivedPart",
    "Candidate",
    "Retention",
    "StoredBytes",
    "archived_error",
]


class ArchivedBytes(StorageError):
    """The bytes asked for were moved to an archive file (``gateway retention restore``)."""

    def __init__(self, what: str, archive_file: str, member: str) -> None:
        super().__init__(f"{what}: arkivert i {archive_file} ({member})")
        self.archive_file = archive_file
        self.member = member


def archived_error(what: str, archive_file: object, member: object) -> ArchivedBytes | None:
    """The error for bytes read from a row whose ``archive_file`` is set, else None."""
    if archive_file is None:
        return None
    return ArchivedBytes(what, str(archive_file), str(member))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A received message whose bytes, and its replies' bodies, may be archived."""

    received_id: int
    received_at: str  # as stored: UTC ISO 8601, so its first ten characters are the UTC day
    sha256: str
    size: int
    msg_id: str | None
    ebxml_message_id: str | None
    bill_ids: tuple[int, ...]
    reply_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ArchivedPart:
    """Where the bytes of a received message (kind ``received``) or a reply now are."""

    kind: str
    row_id: int
    sha256: str
    size: int
    archive_file: str
    member: str


@dataclass(frozen=True, slots=True)
class StoredBytes:
    """What one table holds: rows with their bytes in the database, rows archived."""

    table: str
    rows: int
    bytes_in_database: int
    oldest_in_database: str | None
    archived_rows: int
    archived_bytes: int


#: A reply that is done with its body: delivered, and not awaiting (or in error about) an ack.
_REPLY_DONE = (
    "p.state = 'delivered' AND (p.ack_state IS NULL OR p.ack_state IN ('acknowledged', 'expired'))"
)

#: A received row (alias r) not yet archived, whose replies are done and whose bills wait for
#: no case worker (a manual bill without an override, as the payout ledger reads it).
_ELIGIBLE = (
    "r.archive_file IS NULL "
    f"AND NOT EXISTS (SELECT 1 FROM replies p WHERE p.received_id = r.id AND NOT ({_REPLY_DONE})) "
    "AND NOT EXISTS (SELECT 1 FROM bills b JOIN messages m ON m.id = b.message_id "
    "JOIN bill_status_effective e ON e.bill_id = b.id WHERE m.received_id = r.id "
    "AND b.manual = 1 AND (e.override_kind IS NULL OR e.override_kind <> 'override'))"
)


class Retention:
    """The queries of ``gateway retention``: candidates, their bytes, marking them archived."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def candidates(self, before: datetime, limit: int | None = None) -> list[Candidate]:
        """Received messages older than ``before`` that may give up their bytes, oldest first."""
        sql = (
            "SELECT r.id, r.received_at, r.sha256, r.size, m.msg_id, m.ebxml_message_id "
            "FROM received r LEFT JOIN messages m ON m.received_id = r.id "
            f"WHERE r.received_at < ? AND {_ELIGIBLE} ORDER BY r.id"
        )
        params: list[object] = [stored_moment(before)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        found = self._engine.rows(sql, params)
        return [
            Candidate(
                received_id=int(row[0]),
                received_at=str(row[1]),
                sha256=str(row[2]),
                size=int(row[3]),
                msg_id=None if row[4] is None else str(row[4]),
                ebxml_message_id=None if row[5] is None else str(row[5]),
                bill_ids=self._ids(
                    "SELECT b.id FROM bills b JOIN messages m ON m.id = b.message_id "
                    "WHERE m.received_id = ? ORDER BY b.id",
                    int(row[0]),
                ),
                reply_ids=self._ids(
                    "SELECT id FROM replies WHERE received_id = ? ORDER BY id", int(row[0])
                ),
            )
            for row in found
        ]

    def _ids(self, sql: str, key: int) -> tuple[int, ...]:
        return tuple(int(row[0]) for row in self._engine.rows(sql, (key,)))

    def raw(self, received_id: int) -> bytes:
        """The bytes still in the database of a received message (raises if archived)."""
        found = self._engine.one(
            "SELECT raw, archive_file, archive_member FROM received WHERE id = ?", (received_id,)
        )
        if found is None:
            raise StorageError(f"no received message {received_id}")
        archived = archived_error(f"received message {received_id}", found[1], found[2])
        if archived is not None:
            raise archived
        return bytes(found[0])

    def reply_bodies(self, reply_ids: Sequence[int]) -> dict[int, tuple[str, bytes]]:
        """File name and body of each reply still holding its body in the database."""
        if not reply_ids:
            return {}
        rows = self._engine.rows(
            f"SELECT id, filename, body FROM replies WHERE id IN ({marks(len(reply_ids))}) "
            "AND archive_file IS NULL",
            list(reply_ids),
        )
        return {int(row[0]): (str(row[1]), bytes(row[2])) for row in rows}

    def mark_archived(
        self,
        received: Iterable[tuple[int, str]],
        replies: Iterable[tuple[int, str, str, int]],
        archive_file: str,
    ) -> list[int]:
        """Empty the bytes of the received messages ``(id, member)`` and replies ``(id,
        member, sha256, size)`` now in ``archive_file``, in one transaction. A message is left
        alone if it is no longer eligible (a reply requeued meanwhile): its id is not returned,
        and its replies keep their bodies too."""
        received = list(received)
        by_message: dict[int, list[tuple[int, str, str, int]]] = {}
        for reply in replies:
            owner = self._engine.one("SELECT received_id FROM replies WHERE id = ?", (reply[0],))
            if owner is not None and owner[0] is not None:
                by_message.setdefault(int(owner[0]), []).append(reply)
        done: list[int] = []
        with self._engine.transaction("marking archived bytes") as tx:
            for received_id, member in received:
                if not _still_eligible(tx, received_id):
                    continue
                tx.execute(
                    "UPDATE received SET raw = ?, archive_file = ?, archive_member = ? "
                    "WHERE id = ?",
                    (b"", archive_file, member, received_id),
                )
                for reply_id, reply_member, sha256, size in by_message.get(received_id, []):
                    tx.execute(
                        "UPDATE replies SET body = ?, body_sha256 = ?, body_size = ?, "
                        "archive_file = ?, archive_member = ? "
                        "WHERE id = ? AND archive_file IS NULL",
                        (b"", sha256, size, archive_file, reply_member, reply_id),
                    )
                done.append(received_id)
        return done

    def archived_parts(self, received_id: int | None = None) -> list[ArchivedPart]:
        """Where archived bytes are: of one received message and its replies, or all."""
        where_r, where_p, params = "", "", []
        if received_id is not None:
            where_r, where_p, params = " AND id = ?", " AND received_id = ?", [received_id]
        received = self._engine.rows(
            "SELECT id, sha256, size, archive_file, archive_member FROM received "
            f"WHERE archive_file IS NOT NULL{where_r} ORDER BY id",
            params,
        )
        replies = self._engine.rows(
            "SELECT id, body_sha256, body_size, archive_file, archive_member FROM replies "
            f"WHERE archive_file IS NOT NULL{where_p} ORDER BY id",
            params,
        )
        return [
            ArchivedPart(kind, int(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4]))
            for kind, rows in (("received", received), ("reply", replies))
            for r in rows
        ]

    def restore(self, parts: Sequence[tuple[ArchivedPart, bytes]]) -> None:
        """Put archived bytes (already checked against their hashes) back into the database."""
        with self._engine.transaction("restoring archived bytes") as tx:
            for part, data in parts:
                if part.kind == "received":
                    tx.execute(
                        "UPDATE received SET raw = ?, archive_file = NULL, "
                        "archive_member = NULL WHERE id = ?",
                        (data, part.row_id),
                    )
                else:
                    tx.execute(
                        "UPDATE replies SET body = ?, body_sha256 = NULL, body_size = NULL, "
                        "archive_file = NULL, archive_member = NULL WHERE id = ?",
                        (data, part.row_id),
                    )

    def stored(self) -> list[StoredBytes]:
        """Rows, bytes and the oldest row with bytes in the database, per table."""
        result = []
        for table, column, size, moment in (
            ("received", "raw", "size", "received_at"),
            ("replies", "body", "body_size", "created_at"),
        ):
            kept = self._engine.one(
                f"SELECT COUNT(*), COALESCE(SUM(length({column})), 0), MIN({moment}) "
                f"FROM {table} WHERE archive_file IS NULL"
            )
            moved = self._engine.one(
                f"SELECT COUNT(*), COALESCE(SUM({size}), 0) FROM {table} "
                "WHERE archive_file IS NOT NULL"
            )
            assert kept is not None and moved is not None  # aggregates always return a row
            result.append(
                StoredBytes(
                    table=table,
                    rows=int(kept[0]),
                    bytes_in_database=int(kept[1]),
                    oldest_in_database=None if kept[2] is None else str(kept[2]),
                    archived_rows=int(moved[0]),
                    archived_bytes=int(moved[1]),
                )
            )
        return result


def _still_eligible(reader: Reader, received_id: int) -> bool:
    found = reader.one(f"SELECT 1 FROM received r WHERE r.id = ? AND {_ELIGIBLE}", (received_id,))
    return found is not None
