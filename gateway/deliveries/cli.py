"""``gateway deliveries list|run|log`` and ``gateway paper register|list``.

    gateway deliveries list [--config FILE]             the configured deliveries
    gateway deliveries run NAME [--period P] [--by WHO] make and log one delivery now
    gateway deliveries log [NAME]                       who got what, when, how many rows
    gateway paper register --her ID --submission REF --from DAY --to DAY --bills N \\
        --refund KRONER [--type lege] --by WHO          a paper claim, as an aggregate only
    gateway paper list                                  the registered paper claims

A delivery run by hand (``run``) logs the operator's name; ``--period`` repeats an earlier one
(the same store gives the same bytes: compare the log's SHA-256).
"""

from __future__ import annotations

import argparse
from datetime import date
from decimal import Decimal, InvalidOperation

from gateway.clock import local_naive, utc_now
from gateway.settings import add_config_option


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deliveries = subparsers.add_parser("deliveries", help="scheduled data deliveries")
    sub = deliveries.add_subparsers(dest="deliveries_command", required=True)
    listing = sub.add_parser("list", help="the configured deliveries")
    run = sub.add_parser("run", help="make and log one delivery now")
    run.add_argument("name")
    run.add_argument("--period", help="the period (default: the last whole one)")
    run.add_argument("--by", required=True, help="who asks for it (logged)")
    log = sub.add_parser("log", help="the delivery log")
    log.add_argument("name", nargs="?")
    paper = subparsers.add_parser("paper", help="paper claims, registered as aggregates")
    paper_sub = paper.add_subparsers(dest="paper_command", required=True)
    register = paper_sub.add_parser("register", help="register one paper submission")
    register.add_argument("--her", required=True, help="the practice's HER id")
    register.add_argument("--submission", required=True, help="the submission's reference")
    register.add_argument("--from", dest="first", required=True, type=date.fromisoformat)
    register.add_argument("--to", dest="last", required=True, type=date.fromisoformat)
    register.add_argument("--bills", required=True, type=int, help="how many bills it held")
    register.add_argument("--refund", required=True, help="refund paid, in kroner (1250.50)")
    register.add_argument("--type", dest="ptype", help="practitioner type (lege, ...)")
    register.add_argument("--by", required=True, help="who registers it")
    paper_list = paper_sub.add_parser("list", help="the registered paper claims")
    for command in (listing, run, log, register, paper_list):
        add_config_option(command)


def run(args: argparse.Namespace) -> int | None:
    """Handle ``deliveries`` and ``paper``; None for other commands."""
    command = getattr(args, "command", None)
    if command == "deliveries":
        return _deliveries(args)
    if command == "paper":
        return _paper(args)
    return None


def _deliveries(args: argparse.Namespace) -> int:
    from gateway.config import Config
    from gateway.deliveries.config import DeliveriesConfig
    from gateway.deliveries.extracts import due_period
    from gateway.deliveries.log import deliver, log_entries
    from gateway.stats.mirror import mirror_directory
    from gateway.store import Store

    config = Config.from_toml(args.config)
    settings = DeliveriesConfig.from_table(config.table("deliveries"))
    if args.deliveries_command == "list":
        for e in settings.extracts:
            print(f"{e.name:<24} {e.kind:<12} {e.cron:<14} {e.recipient} ({e.legal_basis})")
        return 0
    if args.deliveries_command != "log":
        try:
            extract = settings.extract(args.name)
        except KeyError:
            print(f"gateway: no delivery named {args.name!r}")
            return 1
    store = Store(config.database)
    try:
        if args.deliveries_command == "log":
            for entry in log_entries(store.engine, args.name):
                print(
                    f"{entry.at}  {entry.delivery:<20} {entry.period:<10} {entry.rows:>8} rows  "
                    f"by {entry.requested_by:<12} {entry.sha256[:16]}  {entry.legal_basis}"
                )
            return 0
        period = args.period or due_period(extract, local_naive(utc_now()).date())
        entry = deliver(
            store.engine,
            settings,
            extract,
            period,
            by=args.by,
            mirror=mirror_directory(config.database),
        )
    finally:
        store.close()
    print(f"{entry.file}: {entry.rows} rows, sha256 {entry.sha256}")
    return 0


def _paper(args: argparse.Namespace) -> int:
    from gateway.config import Config
    from gateway.records import PaperClaim
    from gateway.store import Store

    config = Config.from_toml(args.config)
    store = Store(config.database)
    try:
        if args.paper_command == "list":
            for c in store.paper.all():
                print(
                    f"{c.paper_id:>6} {c.practice_her} {c.submission:<16} {c.period_from} - "
                    f"{c.period_to} {c.bills:>5} bills {c.refund_ore / 100:>12.2f} kr"
                )
            return 0
        try:
            refund = Decimal(args.refund.replace(",", "."))
            claim = PaperClaim(
                args.her,
                args.submission,
                args.first,
                args.last,
                args.bills,
                int((refund * 100).to_integral_exact()),
                args.ptype,
            )
        except (InvalidOperation, ValueError) as exc:
            print(f"gateway: {exc}")
            return 1
        paper_id = store.paper.register(claim, by=args.by)
        if paper_id is None:
            print(f"submission {args.submission} of {args.her} is registered already")
            return 0
        print(f"registered paper claim {paper_id}")
        return 0
    finally:
        store.close()
