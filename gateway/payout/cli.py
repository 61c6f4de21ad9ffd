"""``gateway payout …``: preview, run, list, show and resend payout decisions.

A manual run is keyed by its date (default: today in Norway), so running the same day twice
pays nothing new. A run is recorded (ledger), then its signed decisions are stored and queued
in the outbox (the daemon's outbox sends them), and copies plus the pain.001 payment file are
written (see ``gateway.payout.sending``). Payees are named, and paid to the account, as the
practice register in force says (``gateway.payout.recipients``); payees without an account, or
with a negative net, are held and shown with the reason; so is a decision whose receiver's CPA
does not list its Service/Action (``gateway.payout.routing``): stored, not sent, until the CPA
allows it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from datetime import datetime

from gateway.clock import local_naive, shown, utc_now
from gateway.config import Config
from gateway.payout import ledger, sending
from gateway.payout.config import PayoutConfig
from gateway.payout.payees import PayeePlan, format_kroner, hold_for, plan_payees
from gateway.payout.recipients import Recipients
from gateway.practices.legacy import migrate_once
from gateway.practices.loading import load_register
from gateway.practices.model import PracticeRegister
from gateway.settings import add_config_option
from gateway.store import Store
from gateway.store.engine import Engine


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    payout = subparsers.add_parser("payout", help="payout decisions (utbetalingsvedtak)")
    sub = payout.add_subparsers(dest="payout_command", required=True)
    preview = sub.add_parser("preview", help="what the next run would pay, with totals")
    preview.add_argument("--receiver", help="only this receiver (payee or sender HER id)")
    run = sub.add_parser("run", help="record a run; queue and write its signed decisions")
    run.add_argument("--key", help="the run's key (default: today's date in Norway)")
    run.add_argument("--dry-run", action="store_true", help="show what would be paid; no run")
    sub.add_parser("list", help="the recorded runs")
    show = sub.add_parser("show", help="a run's lines and decisions, per receiver")
    show.add_argument("run_id", type=int)
    resend = sub.add_parser(
        "resend", help="finish an unsent run, or queue its decisions again (same content)"
    )
    resend.add_argument("run_id", type=int)
    for command in (preview, run, show, resend, sub.choices["list"]):
        add_config_option(command)


def run(args: argparse.Namespace) -> int | None:
    """Handle a ``payout`` command; None when the command is not one of these."""
    if getattr(args, "command", None) != "payout":
        return None
    config = Config.from_toml(args.config)
    payout = sending.payout_config_of(config)
    store = Store(config.database)
    try:
        practices = store.practices
        migrate_once(practices, config.practitioners, payout.receivers_file, config.path, _warn)
        register = load_register(practices)  # the register in force, for this one command
        return _command(args, config, payout, register, store.engine)
    finally:
        store.close()


def _command(
    args: argparse.Namespace,
    config: Config,
    payout: PayoutConfig,
    register: PracticeRegister,
    db: Engine,
) -> int | None:
    command = args.payout_command
    if command == "preview" or (command == "run" and args.dry_run):
        return _preview(db, Recipients(register), getattr(args, "receiver", None))
    if command == "run":
        deps = sending.deps_from_config(config, payout, practices=register)
        key = args.key or local_naive(utc_now()).date().isoformat()
        result = ledger.run(db, key, hold=hold_for(deps.registry))
        if not result.created:
            print(f"run {key} was already recorded (run {result.run_id}); nothing new is paid")
        _print_held(plan_payees(result.held, deps.registry))
        outcome = sending.process_run(db, result.run_id, deps)
        held = {h.vedtak_id: h.reason for h in sending.held_decisions(db)}
        for decision in outcome.decisions:
            print(
                f"  {decision.receiver_her}: {format_kroner(decision.total_ore)} kr"
                + (
                    f"  -- HELD, not sent: {held[decision.vedtak_id]}"
                    if decision.vedtak_id in held
                    else ""
                )
            )
        print(
            f"run {key} (id {result.run_id}): {len(outcome.decisions)} decision(s), "
            f"{outcome.queued} queued in the outbox"
            + (f", payments in {outcome.payment_file}" if outcome.payment_file else "")
        )
        return 0
    if command == "list":
        for r in ledger.runs(db):
            print(
                f"{r.run_id:>5}  {r.run_key:<16} {r.state:<9} {r.lines:>6} lines  "
                f"{format_kroner(r.total_ore):>16} kr  (recorded {_recorded(r.created_at)})"
            )
        return 0
    if command == "show":
        return _show(db, args.run_id)
    if command == "resend":
        if ledger.run_record(db, args.run_id) is None:
            print(f"run {args.run_id} does not exist")
            return 1
        deps = sending.deps_from_config(config, payout, practices=register)
        queued = sending.resend(db, args.run_id, deps)
        print(f"run {args.run_id}: {queued} decision(s) queued in the outbox")
        return 0
    return None  # pragma: no cover - argparse enforces the commands


def _warn(text: str) -> None:
    print(f"gateway: {text}", file=sys.stderr)


def _preview(db: Engine, registry: Recipients, receiver: str | None) -> int:
    lines = [
        x
        for x in ledger.plan(db)
        if receiver is None
        or x.receiver_her == receiver
        or registry.payee(x.receiver_her, x.practitioner_type).her_id == receiver
    ]
    plans = plan_payees(lines, registry)
    if not plans:
        print("nothing to pay")
        return 0
    for plan in plans:
        name = plan.payee.name or "(not in the practice register)"
        print(
            f"{plan.payee.her_id} {name}: {len(plan.lines)} bill(s), "
            f"{format_kroner(plan.total_ore)} kr"
            + (f"  -- {plan.held_reason}" if plan.held else "")
        )
    paid = [p for p in plans if not p.held]
    held = [p for p in plans if p.held]
    print(
        f"in all: {format_kroner(sum(p.total_ore for p in paid))} kr to {len(paid)} receiver(s)"
        + (f"; {len(held)} receiver(s) held" if held else "")
    )
    return 0


def _recorded(stored: str) -> str:
    """A run's stored UTC time as every command shows a moment."""
    return shown(datetime.fromisoformat(stored))


def _print_held(plans: list[PayeePlan]) -> None:
    for plan in plans:
        print(
            f"  held {plan.payee.her_id}: {len(plan.lines)} bill(s), "
            f"{format_kroner(plan.total_ore)} kr -- {plan.held_reason}"
        )


def _show(db: Engine, run_id: int) -> int:
    record = ledger.run_record(db, run_id)
    if record is None:
        print(f"run {run_id} does not exist")
        return 1
    print(
        f"run {record.run_id} {record.run_key} ({record.state}), "
        f"recorded {_recorded(record.created_at)}"
    )
    per: dict[str, list[ledger.LineRecord]] = defaultdict(list)
    for line in ledger.run_lines(db, run_id):
        per[line.receiver_her].append(line)
    for sender, items in sorted(per.items()):
        total = sum(i.amount_ore for i in items)
        print(f"sender {sender}: {len(items)} bill(s), {format_kroner(total)} kr")
        for i in items:
            print(f"    bill {i.bill_id:>8}  {i.kind:<10} {format_kroner(i.amount_ore):>14} kr")
    held = {h.vedtak_id: h for h in sending.held_decisions(db)}
    for d in sending.stored_decisions(db, run_id):
        account = d.account or "no account"
        print(
            f"decision {d.vedtak_id} to {d.name} ({d.receiver_her}): {d.bills} bill(s), "
            f"{format_kroner(d.total_ore)} kr, account {account}"
            + (f", KID {d.kid}" if d.kid else "")
        )
        if d.vedtak_id in held:
            print(f"    HELD, not sent: {held[d.vedtak_id].reason}")
    return 0
