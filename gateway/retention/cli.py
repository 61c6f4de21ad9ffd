"""``gateway retention …``: what the database holds, and moving old bytes to archive files.

    gateway retention show                              rows, bytes and age per table
    gateway retention archive --older-than DAYS --to DIR [--dry-run]
                                                        move bytes no longer needed to DIR
    gateway retention restore ID | --verify [ID]        bytes back into the database, or only
                                                        check archived bytes against their hashes

What is printed names ids, files and counts: never bytes, never a national identity number.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from gateway.clock import shown, utc_now
from gateway.errors import GatewayError
from gateway.logs import redact
from gateway.retention.run import archive, restore, verify
from gateway.settings import add_config_option
from gateway.store import Database, Store
from gateway.store.rows import moment

__all__ = ["add_commands", "run"]


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``retention`` to the ``gateway`` command."""
    retention = subparsers.add_parser("retention", help="stored bytes; archive old messages")
    sub = retention.add_subparsers(dest="retention_command", required=True)
    show = sub.add_parser("show", help="rows, bytes and the oldest row with bytes, per table")
    move = sub.add_parser("archive", help="move bytes no longer needed into archive files")
    move.add_argument("--older-than", type=_days, required=True, metavar="DAYS")
    move.add_argument("--to", type=Path, required=True, metavar="DIR", help="archive directory")
    move.add_argument("--dry-run", action="store_true", help="say what would move; move nothing")
    back = sub.add_parser("restore", help="put archived bytes back, or --verify them")
    back.add_argument("received_id", type=int, nargs="?", metavar="ID")
    back.add_argument(
        "--verify", action="store_true", help="only read archived bytes back and check hashes"
    )
    for command in (show, move, back):
        add_config_option(command)


def run(args: argparse.Namespace, database: Database) -> int | None:
    """Handle a ``retention`` command on the claims ``database``; None when it is another."""
    if getattr(args, "command", None) != "retention":
        return None
    store = Store(database)
    try:
        if args.retention_command == "show":
            return _show(store)
        if args.retention_command == "archive":
            return _archive(store, args)
        return _restore(store, args)
    finally:
        store.close()


def _show(store: Store) -> int:
    for t in store.retention.stored():
        oldest = "-" if t.oldest_in_database is None else shown(moment(t.oldest_in_database))
        _out(
            f"{t.table:<9} in database: {t.rows} row(s), {t.bytes_in_database} bytes, "
            f"oldest {oldest}; archived: {t.archived_rows} row(s), {t.archived_bytes} bytes"
        )
    return 0


def _archive(store: Store, args: argparse.Namespace) -> int:
    before = utc_now() - timedelta(days=args.older_than)
    try:
        result = archive(store, before=before, directory=args.to, dry_run=args.dry_run)
    except GatewayError as exc:
        _out(f"not archived: {exc}")
        return 1
    verb = "would archive" if args.dry_run else "archived"
    for path in result.files:
        _out(f"{verb} into {path}")
    _out(
        f"{verb} {result.messages} message(s) and {result.replies} reply(ies), "
        f"{result.bytes} bytes; kept {result.skipped_unsettled} with bills not yet settled, "
        f"{result.skipped_partial} refused as too large (only their first bytes stored)"
    )
    for received_id in result.skipped_mismatch:
        _out(f"kept {received_id}: its bytes do not match its stored SHA-256 or size")
    return 1 if result.skipped_mismatch else 0


def _restore(store: Store, args: argparse.Namespace) -> int:
    if args.verify:
        parts = store.retention.archived_parts(args.received_id)
        failed = verify(store, args.received_id)
        for part, why in failed:
            _out(f"FAILED {part.kind} {part.row_id}: {why}")
        _out(f"verified {len(parts) - len(failed)} of {len(parts)} archived part(s)")
        return 1 if failed else 0
    if args.received_id is None:
        _out("give a received message id, or --verify")
        return 2
    try:
        parts = restore(store, args.received_id)
    except GatewayError as exc:
        _out(f"not restored: {exc}")
        return 1
    for part in parts:
        _out(f"restored {part.kind} {part.row_id} ({part.size} bytes) from {part.archive_file}")
    _out(f"{len(parts)} part(s) restored")
    return 0 if parts else 1


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from exc
    if days < 1:
        raise argparse.ArgumentTypeError("--older-than must be at least 1 day")
    return days


def _out(line: str) -> None:
    print(redact(line))
