"""``gateway outbox …`` and ``gateway messages …``: what was received and what we send.

    gateway outbox list [--state S] [--kind K]     replies, oldest first (no bodies)
    gateway outbox show ID [--decoded | --body]    one reply and what it says; ``--decoded``
                                                   adds its documents as XML, ``--body`` writes
                                                   its exact bytes instead
    gateway outbox dead                            dead letters, with the reason
    gateway outbox requeue ID... | --all-dead      dead letters back to pending
    gateway outbox discard ID... --reason TEXT     give up on dead letters (kept, audited)
    gateway outbox awaiting-ack [--expired]        sent with AckRequested, no ack yet (or expired)
    gateway messages list [--since T] [--outcome O]
    gateway messages show ID [--decoded]           a received message, its ids and its replies

Times are shown in Norwegian time with their offset (``2026-10-05T10:30:00+02:00``); ``--since``
takes a date or a time, Norwegian time unless it has an offset. Every line printed passes
``gateway.logs.redact``: no national identity number reaches the terminal, whatever a detail
text holds. What a reply says is a one-line summary (``gateway.receipts.decode``); its documents
(an AppRec or payout decision may name patients) are printed only when asked for with
``--decoded``, its bytes with ``--body``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from gateway.clock import bound, parse_moment, shown, utc_now
from gateway.logs import redact
from gateway.receipts.decode import DecodedReply, decode_reply, summary
from gateway.records import Outcome, ReceivedSummary, ReplySummary
from gateway.settings import add_config_option
from gateway.store import Database, Store
from gateway.store.retention import ArchivedBytes

STATES = ("pending", "delivered", "dead", "discarded")
KINDS = ("acknowledgment", "message_error", "apprec", "payout_decision")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``outbox`` and ``messages`` to the ``gateway`` command."""
    outbox = subparsers.add_parser("outbox", help="replies we send: state, dead letters, acks")
    sub = outbox.add_subparsers(dest="outbox_command", required=True)
    listing = sub.add_parser("list", help="replies, oldest first")
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--kind", choices=KINDS)
    listing.add_argument("--limit", type=int, default=200)
    show = sub.add_parser("show", help="one reply: what it says, state, attempts, errors, ack")
    show.add_argument("reply_id", type=int)
    shown_as = show.add_mutually_exclusive_group()
    shown_as.add_argument(
        "--decoded", action="store_true", help="also print its documents as readable XML"
    )
    shown_as.add_argument("--body", action="store_true", help="write the reply's exact bytes")
    dead = sub.add_parser("dead", help="dead letters (permanent failures), with the reason")
    requeue = sub.add_parser("requeue", help="send dead letters again")
    requeue.add_argument("reply_ids", type=int, nargs="*")
    requeue.add_argument("--all-dead", action="store_true", help="every dead letter")
    discard = sub.add_parser("discard", help="give up on dead letters (the rows are kept)")
    discard.add_argument("reply_ids", type=int, nargs="+")
    discard.add_argument("--reason", required=True, help="why (kept with the reply)")
    for command in (requeue, discard):
        command.add_argument("--by", default=_user(), help="who (default: the login name)")
    awaiting = sub.add_parser("awaiting-ack", help="sent with AckRequested, not acknowledged")
    awaiting.add_argument("--expired", action="store_true", help="those given up on instead")

    messages = subparsers.add_parser("messages", help="received messages")
    msub = messages.add_subparsers(dest="messages_command", required=True)
    mlist = msub.add_parser("list", help="received messages, oldest first")
    mlist.add_argument(
        "--since",
        type=_since,
        metavar="WHEN",
        help="received at or after this date or time: YYYY-MM-DD or YYYY-MM-DDTHH:MM, "
        "Norwegian time (Europe/Oslo) unless an offset is given (…T10:30+00:00)",
    )
    mlist.add_argument("--outcome", choices=[o.value for o in Outcome])
    mlist.add_argument("--limit", type=int, default=200)
    mshow = msub.add_parser("show", help="a received message: ids, outcome, replies")
    mshow.add_argument("received_id", type=int)
    mshow.add_argument(
        "--decoded", action="store_true", help="also print each reply's documents as XML"
    )

    for command in (listing, show, dead, requeue, discard, awaiting, mlist, mshow):
        add_config_option(command)


def run(args: argparse.Namespace, database: Path | Database) -> int | None:
    """Handle an ``outbox`` or ``messages`` command on the claims ``database`` (the ``gateway``
    command reads it from ``--config``); None when the command is neither."""
    command = getattr(args, "command", None)
    if command not in ("outbox", "messages"):
        return None
    store = Store(database)
    try:
        if command == "outbox":
            return _outbox(store, args)
        return _messages(store, args)
    finally:
        store.close()


# --- outbox ------------------------------------------------------------------------------------


def _outbox(store: Store, args: argparse.Namespace) -> int:
    command = args.outbox_command
    if command == "list":
        rows = store.outbox.list_replies(state=args.state, kind=args.kind, limit=args.limit)
        _table(rows)
        return 0
    if command == "show":
        reply = store.outbox.reply(args.reply_id)
        if reply is None:
            _out(f"no reply {args.reply_id}")
            return 1
        try:
            body = store.outbox.reply_body(reply.id)
        except ArchivedBytes as archived:
            _details(reply)
            _out(f"{'says:':<18} arkivert i {archived.archive_file} ({archived.member})")
            return 0 if not args.body else 1
        if args.body:
            sys.stdout.flush()
            sys.stdout.buffer.write(body)
            sys.stdout.buffer.flush()
            return 0
        decoded = decode_reply(body)
        _details(reply)
        _out(f"{'says:':<18} {summary(decoded)}")
        if args.decoded:
            _documents(decoded)
        return 0
    if command == "dead":
        rows = store.outbox.dead_letters()
        for r in rows:
            _out(
                f"{r.id:>7}  {r.kind:<15} {r.recipient:<28} attempts {r.attempts:<3} "
                f"{r.last_error}"
            )
        _out(f"{len(rows)} dead letter(s)")
        return 0
    if command == "requeue":
        if args.all_dead == bool(args.reply_ids):
            return _usage("give reply ids or --all-dead (not both)")
        ids = [r.id for r in store.outbox.dead_letters()] if args.all_dead else args.reply_ids
        changed = store.outbox.requeue(ids, by=args.by)
        return _report("requeued", ids, changed)
    if command == "discard":
        if not args.reason.strip():
            return _usage("--reason must not be empty")
        changed = store.outbox.discard(args.reply_ids, args.reason.strip(), by=args.by)
        return _report("discarded", args.reply_ids, changed)
    if command == "awaiting-ack":
        rows = (
            store.outbox.list_replies(ack_state="expired", limit=None)
            if args.expired
            else store.acks.awaiting_acks()
        )
        now = utc_now()
        for r in rows:
            sent = shown(r.delivered_at) if r.delivered_at else "not yet"
            due = shown(r.next_attempt_at) if r.state == "delivered" else r.state
            _out(
                f"{r.id:>7}  {r.kind:<15} {r.recipient:<28} sends {r.sends:<2} last sent {sent}  "
                f"resend {due}  expires {shown(r.expires_at)}  "
                f"age {_age(now, r.created_at)}  {r.ebxml_message_id or ''}"
            )
        _out(f"{len(rows)} {'expired' if args.expired else 'awaiting an acknowledgment'}")
        return 0
    return 2  # pragma: no cover - argparse enforces the commands


def _report(done: str, asked: Iterable[int], changed: list[int]) -> int:
    for reply_id in changed:
        _out(f"{done} {reply_id}")
    skipped = [i for i in asked if i not in changed]
    for reply_id in skipped:
        _out(f"not a dead letter (left alone): {reply_id}")
    _out(f"{len(changed)} {done}")
    return 1 if skipped else 0


def _table(rows: list[ReplySummary]) -> None:
    for r in rows:
        ack = r.ack_state or "-"
        _out(
            f"{r.id:>7}  {shown(r.created_at)}  {r.kind:<15} "
            f"{r.state:<9} ack {ack:<12} sends {r.sends:<2} attempts {r.attempts:<3} "
            f"{r.recipient}"
        )
    _out(f"{len(rows)} reply(ies)")


def _details(r: ReplySummary) -> None:
    fields: list[tuple[str, object]] = [
        ("id", r.id),
        ("kind", r.kind),
        ("recipient", r.recipient),
        ("file name", r.filename),
        ("ebXML MessageId", r.ebxml_message_id),
        ("RefToMessageId", r.ref_to_message_id),
        ("answers received", r.received_id),
        ("created", r.created_at),
        ("state", r.state),
        ("delivered", r.delivered_at),
        ("sends", r.sends),
        ("failed attempts", r.attempts),
        ("next attempt", r.next_attempt_at),
        ("last error", r.last_error),
        ("ack state", r.ack_state),
        ("ack received in", r.ack_received_id),
        ("ack at", r.ack_at),
        ("expires", r.expires_at),
        ("size", f"{r.size} bytes (gateway outbox show {r.id} --body)"),
    ]
    for name, value in fields:
        if isinstance(value, datetime):
            value = shown(value)
        _out(f"{name + ':':<18} {'-' if value is None else value}")


def _documents(decoded: DecodedReply) -> None:
    """Each readable document of a reply (redacted), the AppRec first."""
    for document in decoded.documents:
        where = f" {document.content_id}" if document.content_id else ""
        _out(f"--- {document.part}{where} ---")
        _out(document.xml)


# --- messages ----------------------------------------------------------------------------------


def _messages(store: Store, args: argparse.Namespace) -> int:
    if args.messages_command == "list":
        rows = store.messages.list_received(
            since=args.since, outcome=args.outcome, limit=args.limit
        )
        for m in rows:
            _out(
                f"{m.id:>7}  {shown(m.received_at)}  {m.outcome:<18} "
                f"{m.action or '-':<16} from {m.from_her or m.sender_her or '-':<10} "
                f"{m.ebxml_message_id or m.source_ref}"
            )
        _out(f"{len(rows)} message(s)")
        return 0
    if args.messages_command == "show":
        found = store.messages.received_summary(args.received_id)
        if found is None:
            _out(f"no received message {args.received_id}")
            return 1
        _message(found)
        for part in store.retention.archived_parts(found.id):
            if part.kind == "received":
                _out(f"{'bytes:':<18} arkivert i {part.archive_file} ({part.member})")
        replies = store.messages.replies_of(found.id)
        _out("replies:" if replies else "replies: none")
        for r in replies:
            role = "settled by this signal" if r.ack_received_id == found.id else r.kind
            _out(
                f"  {r.id:>7}  {role:<22} {r.state:<9} ack {r.ack_state or '-':<12} "
                f"{r.ebxml_message_id or ''}"
            )
            try:
                decoded = decode_reply(store.outbox.reply_body(r.id))
            except ArchivedBytes as archived:
                _out(f"           says: arkivert i {archived.archive_file}")
                continue
            _out(f"           says: {summary(decoded)}")
            if args.decoded:
                _documents(decoded)
        return 0
    return 2  # pragma: no cover - argparse enforces the commands


def _message(m: ReceivedSummary) -> None:
    fields: list[tuple[str, object]] = [
        ("id", m.id),
        ("received", shown(m.received_at)),
        ("source", f"{m.source} {m.source_ref}"),
        ("size", f"{m.size} bytes, sha256 {m.sha256}"),
        ("outcome", m.outcome),
        ("detail", m.detail),
        ("duplicate of", m.duplicate_of),
        ("ebXML MessageId", m.ebxml_message_id),
        ("ConversationId", m.conversation_id),
        ("CPAId", m.cpa_id),
        ("from / to HER", f"{m.from_her or '-'} / {m.to_her or '-'}"),
        ("service / action", f"{m.service or '-'} / {m.action or '-'}"),
        ("MsgId", m.msg_id),
        ("message type", m.msg_type),
        ("sender", f"{m.sender_name or '-'} (HER {m.sender_her or '-'})"),
        ("AppRec status", m.apprec_status),
        ("bills", m.bills),
    ]
    for name, value in fields:
        _out(f"{name + ':':<18} {'-' if value is None else value}")


# --- helpers -----------------------------------------------------------------------------------


def _usage(problem: str) -> int:
    print(f"gateway: {problem}", file=sys.stderr)
    return 2


def _out(line: str) -> None:
    print(redact(line))


def _age(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _since(text: str) -> datetime:
    """A date (from its midnight) or a time; Norwegian time unless it has an offset."""
    try:
        return bound(parse_moment(text), aware=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"
