"""The case-work commands of ``gateway``: ``claims show|override`` and
``rules list|explain|replay``. ``gateway.cli`` adds them with ``add_commands`` and runs them
with ``run`` (which returns None for a command that is not one of these)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from gateway.casework import render
from gateway.casework.explain import explain
from gateway.casework.lookup import CaseworkError, bill_details, parse_kroner, resolve_bill
from gateway.casework.overrides import APPROVE, REJECT, override
from gateway.casework.replay import replay
from gateway.casework.rerun import Environment
from gateway.casework.ruleset import families, rules_in_force
from gateway.clock import OSLO, bound, parse_moment
from gateway.config import Config
from gateway.practices.loading import load_register
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.settings import add_config_option
from gateway.store import Store
from gateway.tariffs.loading import load_book

#: Replays of at least this many bills report progress on stderr.
PROGRESS_FROM = 50


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``claims`` and ``rules`` with their subcommands to the ``gateway`` parser."""
    bill_help = "bill id, Guid, or HER-id:RegningNr (e.g. 8141253:1001)"

    claims = subparsers.add_parser("claims", help="stored bills: show, override (case work)")
    claims_sub = claims.add_subparsers(dest="claims_command", required=True)
    show = claims_sub.add_parser("show", help="a bill, its decision, findings and overrides")
    show.add_argument("bill", help=bill_help)
    _common(show, json_output=True)

    over = claims_sub.add_parser(
        "override", help="a case worker's decision on a bill (an audited record)"
    )
    over.add_argument("bill", help=bill_help)
    decision = over.add_mutually_exclusive_group(required=True)
    decision.add_argument("--approve", action="store_true", help="godkjenn regningen")
    decision.add_argument("--reject", action="store_true", help="avvis regningen")
    over.add_argument("--reason", default="", help="begrunnelse (required)")
    over.add_argument("--by", default="", help="saksbehandlerens navn (required)")
    over.add_argument(
        "--amount", help="approved amount in kroner (with --approve; default: as claimed)"
    )
    _common(over, json_output=False)

    rules = subparsers.add_parser("rules", help="the rule set: list, explain, replay")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    listing = rules_sub.add_parser("list", help="the rules in force on a date")
    listing.add_argument("--at", type=_date, help="date (YYYY-MM-DD); default today")
    listing.add_argument("--family", help="only this family (e.g. dental, lab, generell)")
    _common(listing, json_output=True)

    why = rules_sub.add_parser("explain", help="which rules ran on a bill and which fired")
    why.add_argument("bill", help=bill_help)
    _common(why, json_output=True)

    again = rules_sub.add_parser(
        "replay", help="re-run stored bills against the current rules (rebehandling)"
    )
    again.add_argument(
        "--since",
        type=_moment,
        required=True,
        help="from this date or time (YYYY-MM-DD[THH:MM]), Norwegian time unless an offset "
        "is given",
    )
    again.add_argument(
        "--until", type=_moment, help="up to and including this date (or before this time)"
    )
    again.add_argument(
        "--date-field",
        choices=("treatment", "received"),
        default="treatment",
        help="select by DatoTid (treatment, default) or by when the message was received",
    )
    again.add_argument(
        "--apply", action="store_true", help="record the changes (default: only show them)"
    )
    again.add_argument("--by", default="", help="who runs the rebehandling (with --apply)")
    _common(again, json_output=True)


def _common(parser: argparse.ArgumentParser, *, json_output: bool) -> None:
    add_config_option(parser)
    if json_output:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int | None:
    """Run a case-work command; None when ``args`` is for another command."""
    command = getattr(args, "command", None)
    try:
        if command == "claims":
            if args.claims_command == "show":
                return _show(args)
            return _override(args)
        if command == "rules":
            if args.rules_command == "list":
                return _list(args)
            if args.rules_command == "explain":
                return _explain(args)
            return _replay(args)
    except CaseworkError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    return None


# --- the commands -------------------------------------------------------------------------------


@contextmanager
def _store(config_path: Path) -> Iterator[tuple[Config, Store]]:
    config = Config.from_toml(config_path)
    store = Store(config.database)
    try:
        yield config, store
    finally:
        store.close()


def environment(config: Config, store: Store) -> Environment:
    """What explain and replay evaluate with, as the daemon would now: the registry's rules,
    the tariff data in force (the newest imports) and the practice register in force."""
    return Environment(
        engine=RuleEngine(RULES),
        tariffs=load_book(store.tariff_imports),
        practices=load_register(store.practices),
    )


def _show(args: argparse.Namespace) -> int:
    with _store(args.config) as (_, store):
        details = bill_details(store, resolve_bill(store, args.bill))
    if args.json:
        print(render.dumps(render.show_json(details)))
    else:
        print(render.show_text(details))
    return 0


def _override(args: argparse.Namespace) -> int:
    amount = None if args.amount is None else parse_kroner(args.amount)
    with _store(args.config) as (_, store):
        bill = resolve_bill(store, args.bill)
        record = override(
            store,
            bill,
            decision=APPROVE if args.approve else REJECT,
            reason=args.reason,
            by=args.by,
            amount_ore=amount,
        )
    print(render.override_text(record, bill))
    return 0


def _list(args: argparse.Namespace) -> int:
    # Only the registry is read: no store is opened (and no database file created).
    on: date = args.at or datetime.now(OSLO).date()
    known = families(RULES)
    if args.family and args.family.lower() not in known:
        raise CaseworkError(
            f"Ukjent regelfamilie {args.family!r}; kjente familier: {', '.join(known)}."
        )
    rules = rules_in_force(RULES, on, args.family)
    if args.json:
        print(render.dumps(render.rules_json(rules, on)))
    else:
        print(render.rules_text(rules, on, args.family))
    return 0


def _explain(args: argparse.Namespace) -> int:
    with _store(args.config) as (config, store):
        bill = resolve_bill(store, args.bill)
        explanation = explain(store, bill, environment(config, store))
    if args.json:
        print(render.dumps(render.explain_json(explanation)))
    else:
        print(render.explain_text(explanation))
    return 0


def _replay(args: argparse.Namespace) -> int:
    by_received = args.date_field == "received"
    since = bound(args.since, aware=by_received)
    until = None if args.until is None else bound(args.until, aware=by_received, end=True)
    if args.by and not args.apply:
        raise CaseworkError("--by brukes bare sammen med --apply.")
    with _store(args.config) as (config, store):
        report = replay(
            store,
            since=since,
            until=until,
            by_received=by_received,
            env=environment(config, store),
            apply=args.apply,
            by=args.by,
            progress=ProgressLine(sys.stderr),
        )
    if args.json:
        print(render.dumps(render.replay_json(report)))
    else:
        print(render.replay_text(report))
    return 0


class ProgressLine:
    """Progress of a large replay on stderr, at most once a second, and when done."""

    def __init__(self, stream: TextIO, *, every: float = 1.0) -> None:
        self.stream = stream
        self.every = every
        self._last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if total < PROGRESS_FROM:
            return
        now = time.monotonic()
        if done < total and now - self._last < self.every:
            return
        self._last = now
        print(
            f"rebehandling: {done}/{total} regninger ({100 * done // total} %)",
            file=self.stream,
            flush=True,
        )


# --- arguments ----------------------------------------------------------------------------------


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _moment(text: str) -> date | datetime:
    """A date, or a date and time (naive: Norwegian local time)."""
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
