"""The ``gateway`` command: the daemon and the operator's tools.

    gateway run --config FILE [--once]       run the daemon (``--once``: until the spool is empty)
    gateway validate FILE... [--json] [--decide] [--verify-signatures [--cert|--cpa] [--at]]
                                             check files; exit 0 valid, 1 invalid, 2 unusable
    gateway keys generate --config FILE      make a development signing key and certificate
    gateway tariffs import FILE... --config  import tariff/NLK data; in force without a restart
    gateway practices import|show|convert    the practice register; in force without a restart
    gateway status --config FILE             counts of received messages and pending replies
    gateway spool requeue --config FILE      put parked files (spool bad/) back into incoming/
    gateway claims show|override ...         a bill, its findings; audited overrides
    gateway rules list|explain|replay ...    rules in force; why a bill was decided; rebehandling
    gateway stats export|import-population|import-residence ...   anonymised open data
    gateway payout preview|run|list|show|resend ...   payout decisions, paid exactly once
    gateway deliveries list|run|log; gateway paper register|list   extracts; paper claims
    gateway health --config FILE [--json]    database, mailboxes, SMTP, certificates (exit 0/1)
    gateway outbox list|show|dead|requeue|discard|awaiting-ack ...   replies and dead letters
    gateway messages list|show ...           what was received, and what it was answered
    gateway users add|disable|enable|roles|password|list ...   web console accounts
    gateway web --config FILE                the web console and the claim status API
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.adapters import load_config
from gateway.casework import cli as casework_cli
from gateway.config import Config
from gateway.deliveries import cli as deliveries_cli
from gateway.errors import ConfigurationError, GatewayError
from gateway.outbox import cli as outbox_cli
from gateway.payout import cli as payout_cli
from gateway.practices import cli as practices_cli
from gateway.service import health_cli
from gateway.settings import add_config_option
from gateway.stats import cli as stats_cli
from gateway.users import cli as users_cli
from gateway.web import cli as web_cli

if TYPE_CHECKING:
    from gateway.validate_files import Inspection


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="Receive KUHR-style claims over ebXML; answer with AppRecs."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    add_config_option(run)
    run.add_argument("--once", action="store_true", help="exit when the spool is empty")

    validate = sub.add_parser("validate", help="validate message files")
    validate.add_argument("files", nargs="+", type=Path)
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="use this config's schema directories and limits, and for --decide everything "
        "(default: none)",
    )
    validate.add_argument(
        "--decide",
        action="store_true",
        help="run the daemon's whole pipeline (all rules; on a copy of the database, nothing "
        "written) and print the AppRec it would send; needs --config",
    )
    validate.add_argument(
        "--verify-signatures",
        action="store_true",
        help="check the ebXML and MsgHead signatures (against --cert or --cpa; without them "
        "against the certificate the signature carries, not pinned)",
    )
    pinned = validate.add_mutually_exclusive_group()
    pinned.add_argument("--cert", type=Path, help="the signer's certificate (PEM or DER)")
    pinned.add_argument("--cpa", type=Path, help="a CPA naming the sender's certificates")
    validate.add_argument(
        "--at",
        help="check certificates at this moment (ISO 8601; local time without a zone), or "
        "'signing-time' (the envelope's Timestamp, the MsgHead's GenDate); default now",
    )

    keys = sub.add_parser("keys", help="signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help="generate a development key + certificate")
    add_config_option(generate, "the config naming the key and certificate files")
    generate.add_argument("--force", action="store_true", help="replace existing files")
    generate.add_argument(
        "--if-missing", action="store_true", help="do nothing (exit 0) if both files exist"
    )

    tariffs = sub.add_parser("tariffs", help="tariff and code data")
    tariffs_sub = tariffs.add_subparsers(dest="tariffs_command", required=True)
    tariffs_import = tariffs_sub.add_parser(
        "import", help="import takster / NLK codes / NLK rates CSV files (kind from the header)"
    )
    tariffs_import.add_argument("files", nargs="+", type=Path)
    add_config_option(tariffs_import)

    status = sub.add_parser("status", help="what the store holds")
    add_config_option(status)

    spool = sub.add_parser("spool", help="spool maintenance")
    spool_sub = spool.add_subparsers(dest="spool_command", required=True)
    requeue = spool_sub.add_parser("requeue", help="move parked files back to incoming/")
    add_config_option(requeue)

    casework_cli.add_commands(sub)  # claims show/override, rules list/explain/replay
    stats_cli.add_commands(sub)  # stats export / import-population / import-residence
    payout_cli.add_commands(sub)  # payout preview / run / list / show / resend
    deliveries_cli.add_commands(sub)  # deliveries list / run / log; paper register / list
    practices_cli.add_commands(sub)  # practices import / show / convert
    health_cli.add_commands(sub)  # health
    outbox_cli.add_commands(sub)  # outbox list/show/dead/requeue/discard/awaiting-ack; messages
    users_cli.add_commands(sub)  # users add/disable/enable/roles/password/list
    web_cli.add_commands(sub)  # web: the console and the claim status API
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (``gateway messages list | head``): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        # The whole file, every adapter's table too, is checked before any command starts.
        path: Path | None = getattr(args, "config", None)
        config = None if path is None else load_config(path)
        handled = casework_cli.run(args)
        if handled is None:
            handled = stats_cli.run(args)
        if handled is None:
            handled = payout_cli.run(args)
        if handled is None:
            handled = deliveries_cli.run(args)
        if handled is None:
            handled = health_cli.run(args)
        if handled is None and config is not None:
            handled = outbox_cli.run(args, config.database)
        if handled is None:
            handled = users_cli.run(args)
        if handled is None:
            handled = web_cli.run(args)
        if handled is not None:
            return handled
        if args.command == "validate":
            return _validate(args, config=config)
        assert config is not None  # every other command has --config with a default
        if args.command == "run":
            return _run(config, once=args.once)
        if args.command == "keys":
            return _keys_generate(config, force=args.force, if_missing=args.if_missing)
        if args.command == "tariffs":
            return _tariffs_import(config, args.files)
        if args.command == "practices":
            return _practices(config, args)
        if args.command == "status":
            return _status(config)
        if args.command == "spool":
            return _spool_requeue(config)
    except ConfigurationError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG: systemd should not restart-loop on this
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    return 2  # pragma: no cover - argparse enforces the commands


def _run(config: Config, *, once: bool) -> int:
    from gateway.daemon import run_daemon
    from gateway.logs import configure_logging

    configure_logging(config.logging.level, config.logging.format)
    return asyncio.run(run_daemon(config, once=once))


def _validate(args: argparse.Namespace, *, config: Config | None) -> int:
    from gateway.inbox.reading import read_bounded
    from gateway.validate_files import Inspection, Verdict, inspect_bytes
    from gateway.validation.catalog import SchemaCatalog
    from gateway.validation.safe_xml import DEFAULT_MAX_XML_BYTES

    extra: tuple[Path, ...] = ()
    max_bytes = DEFAULT_MAX_XML_BYTES
    if config is not None:
        extra = config.validation.official_schema_dirs
        max_bytes = config.validation.max_message_bytes
    if args.decide and config is None:
        raise ConfigurationError(
            "validate --decide needs --config: the daemon's identity, keys, partners and database"
        )
    if (args.cert or args.cpa or args.at) and not args.verify_signatures:
        raise ConfigurationError("--cert, --cpa and --at go with --verify-signatures")
    catalog = SchemaCatalog.default(extra_dirs=extra)
    results: list[Inspection] = []
    readable: list[tuple[Inspection, bytes]] = []
    for path in args.files:
        try:
            data = read_bounded(path, max_bytes)  # refused by size before it is read whole
        except OSError as exc:
            failed = Inspection(name=str(path))
            failed.worsen(Verdict.UNUSABLE, f"cannot read: {exc.strerror}")
            results.append(failed)
            continue
        inspection = inspect_bytes(str(path), data, catalog, max_bytes=max_bytes)
        results.append(inspection)
        readable.append((inspection, data))
    if args.verify_signatures:
        _verify_signatures(args, config, readable, max_bytes)
    if args.decide:
        from gateway.logs import configure_logging
        from gateway.validate_decide import Decider

        assert config is not None  # checked above
        # The pipeline logs as in the daemon: to stderr, so the report on stdout stays clean.
        configure_logging(config.logging.level, config.logging.format)
        with Decider(config) as decider:
            for position, (inspection, data) in enumerate(readable):
                inspection.add_decision(decider.decide(inspection.name, data, position))
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        print("\n".join(r.render() for r in results))
    return int(max(r.verdict for r in results))


def _verify_signatures(
    args: argparse.Namespace,
    config: Config | None,
    readable: Sequence[tuple[Inspection, bytes]],
    max_bytes: int,
) -> None:
    from gateway.partners.cpa import load_cpa
    from gateway.security import cms, cms_signed
    from gateway.security.certificates import load_certificate_file
    from gateway.validate_signatures import Pinning, parse_at, verify_signatures

    try:
        at = parse_at(args.at)
    except ValueError as exc:
        raise ConfigurationError(f"--at must be ISO 8601 or 'signing-time': {exc}") from exc
    pinning = Pinning(
        certificate=load_certificate_file(args.cert) if args.cert else None,
        cpa=load_cpa(args.cpa) if args.cpa else None,
    )
    decrypt = None
    if config is not None and config.security.decryption:
        keys = [
            cms.DecryptionKey.from_files(p.key_file, p.cert_file)
            for p in config.security.decryption
        ]
        decrypt = lambda blob: cms.decrypt(blob, keys, max_bytes=max_bytes)  # noqa: E731
    for inspection, data in readable:
        beside = Path(inspection.name + cms_signed.SIGNATURE_SUFFIX)
        detached = beside.read_bytes() if beside.is_file() else None
        inspection.add_signatures(
            verify_signatures(
                data,
                pinning=pinning,
                at=at,
                max_bytes=max_bytes,
                decrypt=decrypt,
                detached=detached,
            )
        )


def _keys_generate(config: Config, *, force: bool, if_missing: bool) -> int:
    from gateway.receipts.keys import certificate_info, generate_dev_credentials

    key, cert = config.signing.key_file, config.signing.cert_file
    if if_missing and key.exists() and cert.exists():
        return 0
    if (key.exists() or cert.exists()) and not force:
        print(f"gateway: {key} or {cert} exists; use --force to replace them", file=sys.stderr)
        return 1
    generate_dev_credentials(
        key,
        cert,
        common_name=config.identity.name,
        organisation=config.identity.name,
        her_id=config.identity.her_id,
        overwrite=True,
    )
    info = certificate_info(cert)
    print(f"wrote {key} and {cert}")
    for name, value in info.items():
        print(f"  {name}: {value}")
    return 0


def _tariffs_import(config: Config, files: Sequence[Path]) -> int:
    """Import each file; a running daemon picks the new data up before its next message."""
    from gateway.store import Store
    from gateway.tariffs.importing import import_files

    store = Store(config.database)
    try:
        # All or nothing: every file is checked before any is recorded.
        for path, summary in zip(files, import_files(store.tariff_imports, files), strict=True):
            state = "unchanged, already in force" if summary.unchanged else "imported, in force"
            print(f"{path}: {summary.kind}, {summary.rows} rows: {state}")
    finally:
        store.close()
    return 0


def _practices(config: Config, args: argparse.Namespace) -> int:
    """``gateway practices …`` on this config's store; a daemon uses a new import from its
    next message."""
    from gateway.payout.sending import payout_config_of
    from gateway.store import Store

    legacy = practices_cli.Legacy(
        config.practitioners, payout_config_of(config).receivers_file, config.path
    )
    store = Store(config.database)
    try:
        return practices_cli.run(args, store.practices, legacy)
    finally:
        store.close()


def _status(config: Config) -> int:
    from gateway.store import Store

    store = Store(config.database)
    try:
        for name, count in sorted(store.messages.counts().items()):
            print(f"{name}: {count}")
    finally:
        store.close()
    return 0


def _spool_requeue(config: Config) -> int:
    from gateway.inbox.spool import Spool

    moved = Spool(config.spool).requeue_bad()
    for path in moved:
        print(f"requeued {path.name}")
    print(f"{len(moved)} file(s) moved back to {config.spool.incoming}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
