"""``gateway payout …``: preview, run, list, show and resend payout decisions.

A run is keyed by its date (default: today in Norway), so running the same day twice pays
nothing new and writes the same decisions again. Decisions are written, signed, to
``<outbox.directory>/payout/<run key>-<receiver HER id>.xml``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

from gateway.clock import local_naive, utc_now
from gateway.config import Config
from gateway.payout import ledger
from gateway.payout.compose import decisions_for_run, reference_secret, write_decisions
from gateway.receipts.signing import load_signer

DEFAULT_CONFIG = Path("config/local.toml")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    payout = subparsers.add_parser("payout", help="payout decisions (utbetalingsvedtak)")
    sub = payout.add_subparsers(dest="payout_command", required=True)
    preview = sub.add_parser("preview", help="what the next run would pay, with totals")
    preview.add_argument("--receiver", help="only this receiver (HER id)")
    run = sub.add_parser("run", help="record a run and write its signed decisions")
    run.add_argument("--key", help="the run's key (default: today's date in Norway)")
    run.add_argument("--dry-run", action="store_true", help="show what would be paid; no run")
    sub.add_parser("list", help="the recorded runs")
    show = sub.add_parser("show", help="a run's lines, per receiver")
    show.add_argument("run_id", type=int)
    resend = sub.add_parser("resend", help="write a run's decisions again (identical bytes)")
    resend.add_argument("run_id", type=int)
    for command in (preview, run, show, resend, sub.choices["list"]):
        command.add_argument("--config", type=Path, default=DEFAULT_CONFIG)


def run(args: argparse.Namespace) -> int | None:
    """Handle a ``payout`` command; None when the command is not one of these."""
    if getattr(args, "command", None) != "payout":
        return None
    config = Config.from_toml(args.config)
    db = config.database
    command = args.payout_command
    if command == "preview" or (command == "run" and args.dry_run):
        return _preview(db, getattr(args, "receiver", None))
    if command == "run":
        key = args.key or local_naive(utc_now()).date().isoformat()
        result = ledger.run(db, key)
        if not result.created:
            print(f"run {key} was already recorded (run {result.run_id}); nothing new is paid")
        written = _write(config, result.run_id)
        for receiver, ore in sorted(result.per_receiver.items()):
            print(f"  {receiver}: {ore / 100:.2f} kr")
        print(f"run {key} (id {result.run_id}): {len(written)} decision(s) written")
        return 0
    if command == "list":
        for r in ledger.runs(db):
            print(
                f"{r.run_id:>5}  {r.run_key}  {r.state:<10} {r.lines:>6} lines  "
                f"{r.total_ore / 100:>14.2f} kr  (recorded {r.created_at})"
            )
        return 0
    if command == "show":
        lines = ledger.run_lines(db, args.run_id)
        if not lines:
            print(f"run {args.run_id} has no lines (or does not exist)")
            return 1
        per: dict[str, list[ledger.LineRecord]] = defaultdict(list)
        for line in lines:
            per[line.receiver_her].append(line)
        for receiver, items in sorted(per.items()):
            total = sum(i.amount_ore for i in items)
            print(f"{receiver}: {len(items)} bill(s), {total / 100:.2f} kr")
            for i in items:
                print(f"    bill {i.bill_id:>8}  {i.kind:<10} {i.amount_ore / 100:>12.2f} kr")
        return 0
    if command == "resend":
        written = _write(config, args.run_id)
        print(f"run {args.run_id}: {len(written)} decision(s) written again")
        return 0
    return None  # pragma: no cover - argparse enforces the commands


def _preview(db: Path, receiver: str | None) -> int:
    per: dict[str, list[ledger.PlannedLine]] = defaultdict(list)
    for line in ledger.plan(db):
        if receiver is None or line.receiver_her == receiver:
            per[line.receiver_her].append(line)
    if not per:
        print("nothing to pay")
        return 0
    for her, items in sorted(per.items()):
        total = sum(i.amount_ore for i in items)
        print(f"{her}: {len(items)} bill(s), {total / 100:.2f} kr")
    grand = sum(i.amount_ore for items in per.values() for i in items)
    print(f"in all: {grand / 100:.2f} kr to {len(per)} receiver(s)")
    return 0


def _write(config: Config, run_id: int) -> list[Path]:
    signer = load_signer(config.signing.key_file, config.signing.cert_file)
    run_date = next(r for r in ledger.runs(config.database) if r.run_id == run_id).created_at
    decisions = decisions_for_run(
        config.database,
        run_id,
        payer=config.identity.organisation(),
        secret=reference_secret(config.signing.key_file),
        on=_date_of(run_date),
    )
    return write_decisions(decisions, signer, config.outbox.directory / "payout")


def _date_of(created_at: str) -> date:
    """The Norwegian date a run was recorded: its decisions' vedtaksdato, stable on resend."""
    return local_naive(datetime.fromisoformat(created_at)).date()
