"""Mail-path benchmark: dovecot → ``gateway run`` → SMTP sink, with CMS and signatures on.

    python -m bench.mail_bench [--messages N] [--paced P] [--paced-interval MS] [--bills B]
                               [--seed X] [--keep DIR]

``BENCH_MAIL_MESSAGES`` sets the default of ``--messages`` (300).

1. Makes a test CA, our certificate and ``PARTNERS`` partner certificates (``gateway.testing.
   pki``), one CPA per partner (``gateway.testing.cpa``), and N + P claims as the partners' MSHs
   send them: MsgHead signed, gzipped, CMS-encrypted to us, ebXML envelope signed.
2. Starts a real dovecot (``gateway.testing.dovecot``), an aiosmtpd sink in this process
   (``gateway.testing.smtp_sink``) and the real daemon as its own process (``python -m gateway
   run --config FILE``, logging at ``info`` as in production), and waits for its IMAP login.
3. **Burst**: appends the N claims over one IMAP connection as fast as dovecot takes them, and
   waits for every Acknowledgment and AppRec at the sink. Throughput is N over first append →
   last AppRec; latency per claim is its APPEND's completion → its AppRec's arrival at the sink
   (queueing included), and the gateway's share of it (``received.received_at`` → AppRec);
   the daemon's CPU (user + system, from ``/proc``) over the same window.
4. **Paced**: appends P more claims one at a time, at half the burst rate (or every
   ``--paced-interval`` ms), for the latency of a claim that finds the gateway mostly idle.
   Most of it is dovecot's: it batches mailbox changes for 500 ms before an IDLE push
   (``NOTIFY_DELAY_MSECS`` in its mailbox-watch.c), hence the "in the gateway" share.
5. Opens every reply as the partner would (our signatures verified, the AppRec decrypted) and
   checks that each claim got one Acknowledgment and one AppRec with status 1.
6. The *floor* on a sample of the same claims, in this process: the work no gateway can skip
   (MIME unwrap, envelope signature, CMS decrypt + gunzip, MsgHead signature, schema validation,
   a signed AppRec encrypted to the partner, two signed reply envelopes in MIME), and
   ``floor / measured`` per message, as ``bench.spool_bench`` reports it.
7. Prints a table, then one ``BENCH_JSON {...}`` line with every number.

A measurement, not a test: nothing fails for being slow. It exits 1 when the replies are wrong
(missing, undecryptable, not status 1) or the daemon does not stop cleanly; without dovecot it
prints why and exits 0 (1 in CI, where ``CI`` is set).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import imaplib
import json
import math
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from bench.floor import signed_ok_apprec
from gateway.claims.model import MsgHead
from gateway.clock import local_naive, utc_now
from gateway.config import IdentityConfig
from gateway.ebxml import mime
from gateway.ebxml.compose import build_envelope, reply_header, serialize
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import ManifestReference
from gateway.ebxml.signals import build_acknowledgment
from gateway.security import cms
from gateway.security.signatures import sign_ebxml_envelope, verify_ebxml_envelope, verify_msghead
from gateway.security.xmldsig import Signer
from gateway.testing.claims import (
    Practitioner,
    default_receiver,
    default_sender,
    make_claim,
    msghead_with_bkm,
)
from gateway.testing.cpa import DEFAULT_PARTNER, DEFAULT_US, CpaSpec, write_cpa
from gateway.testing.dovecot import MISSING_REASON, DovecotServer, find_dovecot
from gateway.testing.messages import Route, ebxml_message, open_reply
from gateway.testing.pki import Credentials, TestPki
from gateway.testing.smtp_sink import SmtpSink
from gateway.validation.catalog import SchemaCatalog

DEFAULT_MESSAGES = 300
DEFAULT_PACED = 50
DEFAULT_BILLS = 3
DEFAULT_SEED = 20261123
FLOOR_SAMPLE = 50
PARTNERS = 10
FIRST_PARTNER_HER = 8141253
OUR_HER = "79768"
OUR_MAIL = "mottak@kuhr.bench"
IMAP_USER, IMAP_PASSWORD = "kuhr", "bench-secret"
PRACTITIONERS: tuple[Practitioner, ...] = ("tannlege", "lege", "psykolog", "lab")
#: How often the arrival clock looks at the sink (its resolution).
ARRIVAL_POLL_SECONDS = 0.002
STARTUP_TIMEOUT = 60.0
REPLY_TIMEOUT = 300.0
#: Problems listed in the output (the rest are counted).
MAX_PROBLEMS = 10

CONFIG = """
[identity]
name = "HELFO (mail benchmark)"
her_id = "{our_her}"
enh_id = "889640782"
mail_address = "{our_mail}"

[database]
path = "var/gateway.sqlite3"

[spool]
directory = "var/spool"
settle_seconds = 0

[outbox]
kind = "smtp"
directory = "var/outbox"

[outbox.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from_address = "{our_mail}"
connections = 2
poll_interval = 1.0

[signing]
key_file = "keys/gateway.key.pem"
cert_file = "keys/gateway.cert.pem"

[partners]
directory = "partners"

[security]
decryption_key_file = "keys/gateway.key.pem"
decryption_cert_file = "keys/gateway.cert.pem"

[[imap.mailboxes]]
name = "kuhr"
host = "127.0.0.1"
port = {imap_port}
security = "none"
user = "{imap_user}"
password_file = "imap-password"
poll_interval = 1.0
connect_timeout = 10
command_timeout = 60

[payout]
enabled = false

[logging]
level = "info"
format = "json"

[daemon]
drain_seconds = 30
"""


# --- small helpers --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def ms(seconds: float) -> float:
    return seconds * 1000.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _dist(values: Sequence[float]) -> dict[str, float]:
    return {
        "mean_ms": ms(mean(values)),
        "p50_ms": ms(percentile(values, 50)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values)) if values else math.nan,
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# --- the daemon process, seen from /proc ----------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state is field 3 of stat(5); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The peak resident set size (``VmHWM``) of process ``pid``, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


# --- 1. certificates, CPAs, claims ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partner:
    her_id: str
    route: Route
    credentials: Credentials
    signer: Signer


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: str  # the ebXML MessageId
    raw: bytes
    head: MsgHead
    partner: Partner


def make_partners(pki: TestPki, directory: Path) -> list[Partner]:
    """``PARTNERS`` partners (one key, a certificate each), with one CPA each in ``directory``."""
    directory.mkdir(parents=True)
    partners: list[Partner] = []
    for k in range(PARTNERS):
        her = str(FIRST_PARTNER_HER + k)
        credentials = pki.ca.issue(f"Benkelege {k}", key_name="partner", her_id=her)
        mail = f"lege{k}@bench.test"
        route = Route(from_her=her, cpa_id=f"bench:cpa:{k}", mail_from=mail, mail_to=OUR_MAIL)
        write_cpa(
            directory,
            CpaSpec(
                cpa_id=route.cpa_id,
                us=dataclasses.replace(
                    DEFAULT_US,
                    mail_address=OUR_MAIL,
                    signing_certificate=pki.gateway.certificate,
                    encryption_certificate=pki.gateway.certificate,
                ),
                partner=dataclasses.replace(
                    DEFAULT_PARTNER,
                    her_id=her,
                    name=f"Benkeklinikk {k} AS",
                    mail_address=mail,
                    signing_certificate=credentials.certificate,
                    encryption_certificate=credentials.certificate,
                ),
            ),
        )
        partners.append(Partner(her, route, credentials, credentials.signer()))
    return partners


def make_claims(
    pki: TestPki, partners: Sequence[Partner], *, count: int, bills: int, seed: int
) -> list[Claim]:
    """``count`` distinct claims, secured as a partner's MSH sends them."""
    rng = random.Random(seed)
    today = local_naive(utc_now()).date()
    days_back = 14 + bills // 4  # every DatoTid in the past, as in bench.spool_bench
    claims: list[Claim] = []
    for i in range(count):
        partner = rng.choice(partners)
        day = today - timedelta(days=rng.randint(days_back, days_back + 90))
        start = datetime.combine(day, clock_time(8, 0)) + timedelta(minutes=15 * rng.randint(0, 24))
        head, krav = make_claim(
            rng=rng,
            practitioner=rng.choice(PRACTITIONERS),
            bills=bills,
            sender=default_sender(partner.her_id, name=f"Benkeklinikk {partner.her_id} AS"),
            receiver=default_receiver(OUR_HER),
            start=start,
        )
        message_id = f"bench-{i:06d}-{uuid.UUID(int=rng.getrandbits(128), version=4)}@bench.test"
        raw = ebxml_message(
            msghead_with_bkm(head, krav),
            route=partner.route,
            rng=rng,
            message_id=message_id,
            compress=True,
            payload_signer=partner.signer,
            envelope_signer=partner.signer,
            encrypt_to=pki.gateway.certificate,
        )
        claims.append(Claim(message_id, raw, head, partner))
    return claims


# --- 2.-4. the run --------------------------------------------------------------------------------


class ArrivalClock(threading.Thread):
    """Stamps each mail the sink receives with the time it was first seen (epoch seconds)."""

    def __init__(self, sink: SmtpSink) -> None:
        super().__init__(name="arrival-clock", daemon=True)
        self.sink = sink
        self.times: list[float] = []
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.is_set():
            count = len(self.sink.messages)
            now = time.time()
            while len(self.times) < count:
                self.times.append(now)
            time.sleep(ARRIVAL_POLL_SECONDS)

    def wait_for(self, count: int, daemon: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.times) < count:
            if daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with {daemon.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(self.times)} of {count} replies within {timeout} s")
            time.sleep(0.01)


class Appender:
    """One IMAP connection to dovecot; records when each APPEND completed (epoch seconds)."""

    def __init__(self, server: DovecotServer) -> None:
        self.client = imaplib.IMAP4("127.0.0.1", server.port, timeout=30)
        self.client.login(IMAP_USER, IMAP_PASSWORD)
        self.appended: dict[str, float] = {}
        self.first_started = math.nan

    def append(self, claim: Claim) -> None:
        if math.isnan(self.first_started):
            self.first_started = time.time()
        status, data = self.client.append("INBOX", None, None, claim.raw)
        if status != "OK":
            raise RuntimeError(f"APPEND failed: {data!r}")
        self.appended[claim.message_id] = time.time()

    def close(self) -> None:
        self.client.logout()


@dataclass(slots=True)
class Phase:
    """One phase of the run: what was appended and the daemon's CPU meanwhile."""

    claims: list[Claim]
    started: float  # epoch: the first APPEND began
    ended: float = math.nan  # epoch: the last reply arrived
    cpu_seconds: float = math.nan
    latencies: list[float] = field(default_factory=list)  # APPEND done -> AppRec arrived

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def wait_until_logged(log: Path, event: str, daemon: subprocess.Popen[bytes]) -> float:
    """Block until the daemon logs ``event``; return the seconds waited."""
    started = time.perf_counter()
    needle = f'"event": "{event}"'
    while time.perf_counter() - started < STARTUP_TIMEOUT:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode}:\n{tail(log)}")
        if needle in log.read_text(encoding="utf-8", errors="replace"):
            return time.perf_counter() - started
        time.sleep(0.02)
    raise RuntimeError(f"the daemon did not log {event} within {STARTUP_TIMEOUT} s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def run_phase(
    claims: list[Claim],
    appender: Appender,
    clock: ArrivalClock,
    daemon: subprocess.Popen[bytes],
    *,
    interval: float,
) -> Phase:
    """Append ``claims`` (``interval`` seconds apart; 0: back to back) and wait for both replies
    to each."""
    expected = len(clock.times) + 2 * len(claims)
    cpu_before = cpu_seconds(daemon.pid)
    phase = Phase(claims, started=time.time())
    next_at = time.perf_counter()
    for claim in claims:
        if interval:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += interval
        appender.append(claim)
    clock.wait_for(expected, daemon, REPLY_TIMEOUT)
    phase.ended = clock.times[expected - 1]
    phase.cpu_seconds = cpu_seconds(daemon.pid) - cpu_before
    return phase


# --- 5. what came out -----------------------------------------------------------------------------


@dataclass(slots=True)
class Checked:
    apprec_arrival: dict[str, float] = field(default_factory=dict)  # claim MessageId -> epoch
    counts: dict[str, int] = field(default_factory=dict)  # "<action>" -> replies
    statuses: dict[str, int] = field(default_factory=dict)  # AppRec status -> count
    problems: list[str] = field(default_factory=list)


def check_replies(
    sink: SmtpSink,
    arrivals: Sequence[float],
    pki: TestPki,
    partners: Sequence[Partner],
    claims: Sequence[Claim],
) -> Checked:
    """Open every reply as its partner would, and note when each claim's AppRec arrived."""
    checked = Checked()
    # CMS names the recipient by certificate: each partner's certificate with the shared key.
    keys = [p.credentials.decryption_key() for p in partners]
    answered: dict[str, set[str]] = {}
    for mail, arrived in zip(sink.messages, arrivals, strict=False):
        try:
            opened = open_reply(mail.data, pki.gateway.certificate, keys)
        except Exception as exc:  # reported, and the run fails
            checked.problems.append(f"a reply does not open: {type(exc).__name__}: {exc}")
            continue
        header = opened.envelope.header
        ref = opened.envelope.acknowledgment_ref or header.ref_to_message_id or "?"
        checked.counts[header.action] = checked.counts.get(header.action, 0) + 1
        answered.setdefault(ref, set()).add(header.action)
        if header.action == "Svarmelding":
            checked.apprec_arrival.setdefault(ref, arrived)
            status = opened.status or "?"
            checked.statuses[status] = checked.statuses.get(status, 0) + 1
            if opened.content_types != ("application/pkcs7-mime",):
                checked.problems.append(f"AppRec for {ref} not encrypted")
    for claim in claims:
        got = answered.get(claim.message_id, set())
        if got != {"Acknowledgment", "Svarmelding"}:
            checked.problems.append(f"{claim.message_id}: answered with {sorted(got)}")
    if set(checked.statuses) - {"1"}:
        checked.problems.append(f"AppRec statuses {checked.statuses}, expected all 1")
    if len(checked.problems) > MAX_PROBLEMS:
        more = len(checked.problems) - MAX_PROBLEMS
        checked.problems[MAX_PROBLEMS:] = [f"... and {more} more"]
    return checked


def received_at(database: Path) -> dict[str, float]:
    """claim MessageId -> when the daemon's pipeline received it (epoch seconds)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT m.ebxml_message_id, r.received_at FROM messages m "
            "JOIN received r ON r.id = m.received_id"
        ).fetchall()
    return {str(mid): datetime.fromisoformat(str(at)).timestamp() for mid, at in rows}


# --- 6. the floor ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Timings:
    parts: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.parts.setdefault(name, []).append(seconds)

    def mean_ms(self) -> dict[str, float]:
        return {name: ms(mean(values)) for name, values in self.parts.items()}


def measure_floor(
    claims: Sequence[Claim], pki: TestPki, catalog: SchemaCatalog, identity: IdentityConfig
) -> tuple[list[float], Timings]:
    """The work no gateway can skip for a secured claim, with loaded keys, one claim at a time."""
    us = identity.organisation()
    our_key = [pki.gateway.decryption_key()]
    signer = pki.gateway.signer()
    parts = Timings()
    totals: list[float] = []
    for claim in claims:
        partner_cert = claim.partner.credentials.certificate
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        package = mime.unwrap(claim.raw)
        (part,) = package.attachments
        t1 = time.perf_counter()
        signed = verify_ebxml_envelope(
            package.envelope.body, {part.content_id or "": part.body}, partner_cert, now
        )
        incoming = parse_envelope(serialize(signed)).header
        t2 = time.perf_counter()
        payload = cms.gunzip(cms.decrypt(part.body, our_key))
        t3 = time.perf_counter()
        msghead = verify_msghead(payload, partner_cert, now)
        t4 = time.perf_counter()
        report = catalog.validate(msghead)
        if not report.valid:
            raise RuntimeError(f"{claim.message_id} is not schema-valid: {report}")
        t5 = time.perf_counter()
        local = local_naive(now).replace(microsecond=0)
        head = claim.head  # known from generation: the floor does not even read the MsgHead
        apprec_bytes = signed_ok_apprec(head, us, signer, local)
        t6 = time.perf_counter()
        encrypted = cms.encrypt(apprec_bytes, partner_cert, at=now)
        t7 = time.perf_counter()
        ack = build_acknowledgment(incoming, message_id=f"{uuid.uuid4()}@floor", timestamp=now)
        content_id = f"apprec-{uuid.uuid4().hex}@floor"
        envelope = build_envelope(
            reply_header(
                incoming,
                action="Svarmelding",
                service=incoming.service,
                service_type=incoming.service_type,
                message_id=f"{uuid.uuid4()}@floor",
                timestamp=now,
            ),
            manifest=[ManifestReference(href=f"cid:{content_id}", content_id=content_id)],
            ack_requested=True,
            ack_signed=True,
        )
        for body, attachments in (
            (ack, []),
            (
                envelope,
                [mime.OutgoingPart(content_id, cms_content_type(), encrypted)],
            ),
        ):
            signed_reply = serialize(
                sign_ebxml_envelope(body, signer, {p.content_id: p.body for p in attachments})
            )
            mime.build(
                signed_reply,
                attachments,
                mail_from=OUR_MAIL,
                mail_to=claim.partner.route.mail_from,
                subject="ebXML",
                message_id=f"<{uuid.uuid4()}@floor>",
                date=now,
            )
        t8 = time.perf_counter()
        parts.add("mime.unwrap", t1 - t0)
        parts.add("verify ebXML envelope signature", t2 - t1)
        parts.add("CMS decrypt + gunzip", t3 - t2)
        parts.add("verify MsgHead signature", t4 - t3)
        parts.add("catalog.validate", t5 - t4)
        parts.add("build + sign AppRec", t6 - t5)
        parts.add("CMS encrypt AppRec", t7 - t6)
        parts.add("2 reply envelopes signed + MIME", t8 - t7)
        totals.append(t8 - t0)
    return totals, parts


def cms_content_type() -> str:
    return "application/pkcs7-mime; smime-type=enveloped-data"


# --- 7. report ------------------------------------------------------------------------------------


def _row(label: str, value: str, note: str = "") -> str:
    return f"  {label:<52} {value:>14}  {note}".rstrip()


def print_table(r: dict[str, Any]) -> None:
    def d(key: str) -> str:
        v = r[key]
        return f"p50 {v['p50_ms']:.0f} / p99 {v['p99_ms']:.0f} ms"

    lines = [
        f"gateway mail benchmark: dovecot -> gateway run -> SMTP sink, CMS + signatures on; "
        f"{r['messages']} + {r['paced_messages']} claims x {r['bills_per_message']} bills "
        f"({r['message_bytes_mean'] / 1024:.1f} KiB each), {r['partners']} partners",
        "",
        _row("daemon start -> IMAP logged in", f"{r['daemon_startup_seconds']:.2f} s"),
        "burst (all appended back to back)",
        _row("messages/s", f"{r['messages_per_second']:.1f}", "first APPEND -> last AppRec"),
        _row("per message", f"{r['per_message_ms']:.1f} ms"),
        _row("latency APPEND done -> AppRec at the sink", d("latency_burst"), "queueing included"),
        _row("  of which in the gateway (received_at -> AppRec)", d("latency_burst_in_gateway")),
        _row(
            "daemon CPU per message (user + system)",
            f"{r['daemon_cpu_per_message_ms']:.1f} ms",
            f"busy {r['daemon_cpu_busy_fraction']:.0%} of the window",
        ),
        f"paced (one every {r['paced_interval_ms']:.0f} ms)",
        _row("latency APPEND done -> AppRec at the sink", d("latency_paced")),
        _row(
            "  of which in the gateway (received_at -> AppRec)",
            d("latency_paced_in_gateway"),
            "the rest: dovecot's IDLE push (~0.5 s) + fetch",
        ),
        _row("daemon peak RSS", f"{r['daemon_peak_rss_mib']:.0f} MiB"),
        "",
        f"floor on {r['floor_sample']} of the claims (in this process, loaded keys)",
        _row(
            "floor per message",
            f"{r['floor']['mean_ms']:.2f} ms",
            f"{r['floor']['messages_per_second']:.0f} messages/s",
        ),
    ]
    lines += [_row(f"  {k}", f"{v:.3f} ms") for k, v in r["floor"]["parts_mean_ms"].items()]
    lines += [
        _row(
            "floor / measured",
            f"{r['floor_over_measured']:.3f}",
            f"overhead x{r['overhead_x']:.1f}",
        ),
        "",
        "correctness",
        _row("replies by action", json.dumps(r["replies_by_action"], sort_keys=True)),
        _row("AppRec statuses", json.dumps(r["apprec_statuses"], sort_keys=True)),
        _row("daemon exit code after SIGTERM", str(r["daemon_exit_code"])),
        _row("result", "OK" if r["correct"] else "WRONG", "; ".join(r["problems"][:5])),
        _row(
            "whole benchmark",
            f"{r['total_seconds']:.1f} s",
            f"generation {r['generation_seconds']:.1f} s",
        ),
    ]
    print("\n".join(lines), flush=True)


# --- main -----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if args.messages < 1 or args.paced < 0 or args.bills < 1:
        raise SystemExit("--messages and --bills must be at least 1, --paced at least 0")
    if find_dovecot() is None:
        say(f"mail benchmark skipped: {MISSING_REASON}")
        print("BENCH_JSON " + json.dumps({"skipped": MISSING_REASON}), flush=True)
        return 1 if os.environ.get("CI") else 0
    wall_started = time.perf_counter()
    if args.keep is not None:
        root = Path(args.keep).resolve()
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"--keep {root}: directory is not empty")
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="gateway-mail-bench-"))
    try:
        return _run_in(root, args, wall_started)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"kept everything under {root}")


def _run_in(root: Path, args: argparse.Namespace, wall_started: float) -> int:
    say("making certificates, CPAs and claims ...")
    generation_started = time.perf_counter()
    pki = TestPki.create()
    pki.gateway.write(root / "keys", "gateway")
    partners = make_partners(pki, root / "partners")
    claims = make_claims(
        pki, partners, count=args.messages + args.paced, bills=args.bills, seed=args.seed
    )
    burst, paced = claims[: args.messages], claims[args.messages :]
    generation_seconds = time.perf_counter() - generation_started
    (root / "imap-password").write_text(IMAP_PASSWORD + "\n", encoding="utf-8")
    log_path = root / "var" / "daemon.log"
    log_path.parent.mkdir(parents=True)

    with DovecotServer({IMAP_USER: IMAP_PASSWORD}) as dovecot, SmtpSink() as sink:
        (root / "gateway.toml").write_text(
            CONFIG.format(
                our_her=OUR_HER,
                our_mail=OUR_MAIL,
                smtp_port=sink.port,
                imap_port=dovecot.port,
                imap_user=IMAP_USER,
            ),
            encoding="utf-8",
        )
        clock = ArrivalClock(sink)
        clock.start()
        say(f"  {len(claims)} claims in {generation_seconds:.1f} s; starting the daemon ...")
        with log_path.open("ab") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", "gateway.toml"],
                cwd=root,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        appender: Appender | None = None
        try:
            startup = wait_until_logged(log_path, "imap_connected", daemon)
            appender = Appender(dovecot)
            say(f"  burst: appending {len(burst)} claims ...")
            burst_phase = run_phase(burst, appender, clock, daemon, interval=0.0)
            per_message = burst_phase.seconds / len(burst)
            interval = args.paced_interval / 1000 if args.paced_interval else 2 * per_message
            say(
                f"  burst done in {burst_phase.seconds:.1f} s; paced: {len(paced)} claims, one "
                f"every {ms(interval):.0f} ms ..."
            )
            paced_phase = (
                run_phase(paced, appender, clock, daemon, interval=interval) if paced else None
            )
            rss = peak_rss_mib(daemon.pid)
        finally:
            if appender is not None:
                appender.close()
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            try:
                exit_code = daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                exit_code = daemon.wait()
            clock.finished.set()
            clock.join()
        say("  checking every reply and measuring the floor ...")
        checked = check_replies(sink, clock.times, pki, partners, claims)

    appended = appender.appended
    burst_phase.latencies = [
        checked.apprec_arrival[c.message_id] - appended[c.message_id]
        for c in burst
        if c.message_id in checked.apprec_arrival
    ]
    paced_latencies = [
        checked.apprec_arrival[c.message_id] - appended[c.message_id]
        for c in paced
        if c.message_id in checked.apprec_arrival
    ]

    # The gateway's own share: its pipeline took the mail in (received_at) -> AppRec at the sink.
    received = received_at(root / "var" / "gateway.sqlite3")
    in_gateway = {
        name: [
            checked.apprec_arrival[c.message_id] - received[c.message_id]
            for c in phase_claims
            if c.message_id in checked.apprec_arrival and c.message_id in received
        ]
        for name, phase_claims in (("burst", burst), ("paced", paced))
    }

    catalog = SchemaCatalog.default()
    catalog.compile()
    identity = IdentityConfig(
        "HELFO (mail benchmark)", OUR_HER, "889640782", "KontrollUtbetaler", OUR_MAIL
    )
    every = max(1, len(claims) // FLOOR_SAMPLE)
    sample = claims[::every][:FLOOR_SAMPLE]
    floor_totals, floor_parts = measure_floor(sample, pki, catalog, identity)
    floor_per_message = mean(floor_totals)

    problems = list(checked.problems)
    if exit_code != 0:
        problems.append(f"daemon exit code {exit_code} after SIGTERM")
    results: dict[str, Any] = {
        "messages": len(burst),
        "paced_messages": len(paced),
        "bills_per_message": args.bills,
        "partners": PARTNERS,
        "seed": args.seed,
        "message_bytes_mean": mean([len(c.raw) for c in claims]),
        "generation_seconds": generation_seconds,
        "daemon_startup_seconds": startup,
        "burst_seconds": burst_phase.seconds,
        "messages_per_second": len(burst) / burst_phase.seconds,
        "per_message_ms": ms(per_message),
        "latency_burst": _dist(burst_phase.latencies),
        "daemon_cpu_seconds_burst": burst_phase.cpu_seconds,
        "daemon_cpu_per_message_ms": ms(burst_phase.cpu_seconds / len(burst)),
        "daemon_cpu_busy_fraction": burst_phase.cpu_seconds / burst_phase.seconds,
        "paced_interval_ms": ms(interval),
        "latency_paced": _dist(paced_latencies),
        "latency_paced_in_gateway": _dist(in_gateway["paced"]),
        "latency_burst_in_gateway": _dist(in_gateway["burst"]),
        "daemon_cpu_per_message_ms_paced": (
            ms(paced_phase.cpu_seconds / len(paced)) if paced_phase else math.nan
        ),
        "daemon_peak_rss_mib": rss,
        "bench_process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "floor_sample": len(sample),
        "floor": {
            **_dist(floor_totals),
            "messages_per_second": 1 / floor_per_message,
            "parts_mean_ms": floor_parts.mean_ms(),
        },
        "floor_over_measured": floor_per_message / per_message,
        "overhead_x": per_message / floor_per_message,
        "replies_by_action": checked.counts,
        "apprec_statuses": checked.statuses,
        "daemon_exit_code": exit_code,
        "correct": not problems,
        "problems": problems,
        "total_seconds": time.perf_counter() - wall_started,
    }
    print_table(results)
    if problems:
        say(f"daemon log tail:\n{tail(log_path)}")
    print("BENCH_JSON " + json.dumps(_json_safe(results), sort_keys=True), flush=True)
    return 0 if not problems else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mail_bench", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=int(os.environ.get("BENCH_MAIL_MESSAGES", DEFAULT_MESSAGES)),
        help="claims appended back to back (env BENCH_MAIL_MESSAGES; default %(default)s)",
    )
    parser.add_argument(
        "--paced",
        type=int,
        default=DEFAULT_PACED,
        help="claims appended one at a time afterwards, for idle latency (default %(default)s)",
    )
    parser.add_argument(
        "--paced-interval",
        type=float,
        default=0.0,
        metavar="MS",
        help="milliseconds between paced claims (default: twice the burst's time per claim)",
    )
    parser.add_argument(
        "--bills", type=int, default=DEFAULT_BILLS, help="bills per claim (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help="work in DIR (new or empty) and keep config, database and daemon log afterwards",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
