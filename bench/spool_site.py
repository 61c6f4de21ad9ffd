"""The spool benchmark's site: a config file, keys, imported tariffs, and generated claims.

Every rule is active, as in production: the bundled tariff files are imported (so the tariff,
amount, time and laboratory rules run) and every sender's practitioner type is known from the
``[practitioners]`` table (so no rule stands aside for an unknown type). Logging is at ``info``,
the level the daemon ships with. Each sender sends claims of its own type only; treatment dates
lie weeks in the past (rule 766 does not fire) and Guids and MsgIds are fresh (no duplicates),
so nearly every message is approved; the few same-start dental bills one practice sends are
rejected by the time rules, as they would be in production.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.common import PRACTITIONERS, past_claim, say
from gateway.claims.model import MsgHead, Organisation
from gateway.clock import local_naive, utc_now
from gateway.receipts.keys import generate_dev_credentials
from gateway.store import Store
from gateway.tariffs.importing import import_files
from gateway.testing.claims import (
    Practitioner,
    default_receiver,
    default_sender,
    msghead_with_bkm,
)
from gateway.testing.messages import Route, ebxml_message

OUR_HER = "79768"
SENDER_COUNT = 40
FIRST_SENDER_HER = 8141253
TARIFF_FILES = ("takster.csv", "nlk-codes.csv", "nlk-rates.csv")
GENERATION_PROGRESS_EVERY = 1000
_PROJECT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Site:
    """One benchmark site under ``root``: ``bench.toml`` and what it names."""

    root: Path
    config_path: Path
    senders: tuple[Organisation, ...]
    types: Mapping[str, Practitioner]  # sender HER id -> practitioner type

    @property
    def incoming(self) -> Path:
        return self.root / "spool" / "incoming"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def database(self) -> Path:
        return self.root / "gateway.sqlite3"

    @property
    def key_file(self) -> Path:
        return self.root / "keys" / "signing-key.pem"

    @property
    def cert_file(self) -> Path:
        return self.root / "keys" / "signing-cert.pem"


def make_site(root: Path, *, workers: int | None = None, fast_spool: bool = True) -> Site:
    """A site in ``root`` (new or empty): config, keys, tariffs imported, practitioners known.

    ``workers``: ``daemon.workers`` (None: the default). ``fast_spool``: poll every 0.1 s and
    take files at once (for throughput, where the spool is full before the daemon starts);
    False: the shipped spool defaults (for latency)."""
    root.mkdir(parents=True, exist_ok=True)
    senders = tuple(
        default_sender(str(FIRST_SENDER_HER + k), name=f"Benkeklinikk {k} AS")
        for k in range(SENDER_COUNT)
    )
    types = {s.her_id or "": PRACTITIONERS[k % len(PRACTITIONERS)] for k, s in enumerate(senders)}
    spool = ['directory = "spool"']
    if fast_spool:
        spool += ["settle_seconds = 0", "poll_interval = 0.1"]
    daemon = [f"workers = {workers}"] if workers is not None else []
    practitioners = [f'"{her}" = "{kind}"' for her, kind in types.items()]
    config = root / "bench.toml"
    config.write_text(
        "\n".join(
            [
                "[identity]",
                'name = "HELFO (benchmark)"',
                f'her_id = "{OUR_HER}"',
                'enh_id = "889640782"',
                'mail_address = "gateway@kuhr.bench"',
                "[database]",
                'path = "gateway.sqlite3"',
                "[spool]",
                *spool,
                "[outbox]",
                'kind = "file"',
                'directory = "outbox"',
                "[signing]",
                'key_file = "keys/signing-key.pem"',
                'cert_file = "keys/signing-cert.pem"',
                "[logging]",
                'level = "info"',
                'format = "json"',
                "[daemon]",
                *daemon,
                "[practitioners]",
                *practitioners,
                "",
            ]
        ),
        encoding="utf-8",
    )
    site = Site(root, config, senders, types)
    generate_dev_credentials(
        site.key_file,
        site.cert_file,
        common_name="gateway benchmark",
        organisation="HELFO (benchmark)",
        her_id=OUR_HER,
    )
    store = Store(site.database)
    try:
        tariffs = _PROJECT / "fixtures" / "tariffs"
        import_files(store.tariff_imports, [tariffs / name for name in TARIFF_FILES])
    finally:
        store.close()
    return site


@dataclass(frozen=True, slots=True)
class Claim:
    """A generated claim message and the MsgHead it carries."""

    name: str
    raw: bytes
    head: MsgHead


def claims(site: Site, count: int, *, bills: int, seed: int, prefix: str = "claim") -> list[Claim]:
    """``count`` distinct claim messages (``bills`` bills each), each sender of its own type."""
    rng = random.Random(seed)
    receiver = default_receiver(OUR_HER)
    today = local_naive(utc_now()).date()
    made: list[Claim] = []
    started = time.perf_counter()
    for i in range(count):
        sender = rng.choice(site.senders)
        head, krav = past_claim(
            rng,
            today=today,
            bills=bills,
            sender=sender,
            receiver=receiver,
            practitioner=site.types[sender.her_id or ""],
        )
        raw = ebxml_message(
            msghead_with_bkm(head, krav),
            route=Route(from_her=sender.her_id or "", to_her=OUR_HER),
            rng=rng,
        )
        made.append(Claim(f"{prefix}-{i:06d}.msg", raw, head))
        if (i + 1) % GENERATION_PROGRESS_EVERY == 0 and i + 1 < count:
            say(f"  generated {i + 1}/{count} ({time.perf_counter() - started:.1f} s)")
    return made


def drop(directory: Path, claim: Claim) -> float:
    """Drop one claim as the README says (write a dot file, rename); the landing time."""
    hidden = directory / f".{claim.name}.tmp"
    hidden.write_bytes(claim.raw)
    os.rename(hidden, directory / claim.name)
    return time.time()
