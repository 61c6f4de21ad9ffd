"""Three gateway instances on one PostgreSQL database: kill one, stop one, lose nothing.

Three real ``gateway run`` processes share a PostgreSQL database (started by the tests), a
dovecot with three mailboxes (each instance is configured with all three; each mailbox is polled
by one instance at a time) and an SMTP sink. 2,000 claims from ten partners (MsgHead signed;
their CPAs ask for neither compression nor encryption, to keep the test's CPU on the instances'
cooperation) are appended to the mailboxes. One instance is killed with SIGKILL mid-run,
another stopped with SIGTERM; the third (and whichever took over) finishes. Payout runs every
minute in every instance meanwhile. Then:

- every claim is received once (one message row), answered once (one AppRec row), and its
  Acknowledgment and AppRec reached the sink; a reply sent more than once (at least once, by
  design: a kill between sending and recording) is the same bytes every time;
- the killed instance's mailboxes were taken over within 30 s;
- no bill is paid twice, and no bill is paid more than its target.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import psycopg
import pytest

from bench.mail_claims import OUR_HER, OUR_MAIL, Partner, make_partners
from gateway.clock import local_naive, utc_now
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message, open_reply
from tests.support.dovecot import MISSING_REASON, DovecotServer, find_dovecot
from tests.support.mail_site import MailSite, SiteSettings
from tests.support.pki import TestPki
from tests.support.postgres import PostgresServer
from tests.support.smtp_sink import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.postgres]

CLAIMS = 2_000
USERS = ("kuhr", "kuhr2", "kuhr3")
PASSWORD = "s3cret-instances"
#: The longest a dead instance's mailbox may wait for another instance.
TAKEOVER_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: str
    raw: bytes


def _account(base: int) -> str:
    """A Norwegian account number with a valid MOD11 check digit, from ten digits."""
    while True:
        digits = [int(d) for d in f"{base:010d}"]
        rest = sum(w * d for w, d in zip((5, 4, 3, 2, 7, 6, 5, 4, 3, 2), digits, strict=True)) % 11
        check = 0 if rest == 0 else 11 - rest
        if check < 10:
            return f"{base:010d}{check}"
        base += 1


def _claims(partners: Sequence[Partner], count: int) -> list[Claim]:
    """``count`` one-bill claims of a lege, weeks to months old, as the partners' MSHs send
    them (MsgHead signed)."""
    rng = random.Random(20261124)
    today = local_naive(utc_now()).date()
    claims: list[Claim] = []
    for i in range(count):
        partner = partners[i % len(partners)]
        day = today - timedelta(days=rng.randint(14, 100))
        head, krav = make_claim(
            rng=rng,
            practitioner="lege",
            bills=1,
            sender=default_sender(partner.her_id, name=f"Klinikk {partner.her_id} AS"),
            receiver=default_receiver(OUR_HER),
            start=datetime.combine(day, clock_time(8, 0)) + timedelta(minutes=rng.randint(0, 480)),
        )
        message_id = f"inst-{i:05d}-{uuid.UUID(int=rng.getrandbits(128), version=4)}@test"
        raw = ebxml_message(
            msghead_with_bkm(head, krav),
            route=partner.route,
            rng=rng,
            message_id=message_id,
            payload_signer=partner.signer,
        )
        claims.append(Claim(message_id, raw))
    return claims


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"instances_{uuid.uuid4().hex[:8]}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


def _events(site: MailSite, event: str) -> list[dict[str, object]]:
    found = []
    for line in site.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if f'"event": "{event}"' in line:
            found.append(json.loads(line))
    return found


def _at(record: dict[str, object]) -> float:
    return datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")).timestamp()


def _holding(site: MailSite) -> set[str]:
    """The mailboxes ``site`` took and has not given up (by its log)."""
    held: set[str] = set()
    lines = site.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    for line in lines:
        if '"imap_mailbox_taken"' in line:
            held.add(str(json.loads(line)["imap_mailbox"]))
        elif '"imap_stopped"' in line or '"imap_mailbox_lease_lost"' in line:
            held.discard(str(json.loads(line)["imap_mailbox"]))
    return held


def test_three_instances_answer_every_mail_once_through_a_kill_and_a_stop(
    tmp_path: Path, pg_url: str
) -> None:
    if find_dovecot() is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING_REASON)
        pytest.skip(MISSING_REASON)
    pki = TestPki.create()
    partners = [
        dataclasses.replace(p, cpa=dataclasses.replace(p.cpa, compressed=False, encrypted=False))
        for p in make_partners(pki)
    ]
    receivers = tmp_path / "receivers.toml"
    receivers.write_text(
        "".join(
            f'[[receiver]]\nher_id = "{p.her_id}"\nname = "Klinikk {p.her_id} AS"\n'
            f'account = "{_account(1503000000 + n * 97)}"\n\n'
            for n, p in enumerate(partners)
        ),
        encoding="utf-8",
    )
    settings = SiteSettings(
        name="HELFO (instances)",
        her_id=OUR_HER,
        mail_address=OUR_MAIL,
        imap_user=USERS[0],
        imap_password=PASSWORD,
        more_mailboxes=USERS[1:],
        database={"url": pg_url, "pool_size": 4},
        payout={
            "enabled": True,
            "cron": "* * * * *",
            "receivers_file": str(receivers),
            "payer_account": _account(8601111000),
            "claim_lease_seconds": 20,
        },
        practitioners={p.her_id: "lege" for p in partners},
        spool={"poll_interval": 0.5},
        smtp={"timeout": 10, "backoff_base": 0.2, "backoff_max": 2.0, "poll_interval": 0.5},
        imap={"poll_interval": 0.5, "idle_timeout": 10, "connect_timeout": 5,
              "command_timeout": 30, "batch_size": 50},
        daemon={"drain_seconds": 20},
    )  # fmt: skip
    with (
        DovecotServer(dict.fromkeys(USERS, PASSWORD)) as dovecot,
        SmtpSink() as sink,
        psycopg.connect(pg_url, autocommit=True) as db,
    ):
        sites = [
            MailSite(tmp_path / f"instance{n}", pki.gateway, dovecot, sink, settings,
                     cpas=[p.cpa for p in partners])
            for n in (1, 2, 3)
        ]  # fmt: skip
        try:
            claims = _run(sites, dovecot, sink, db, partners)
        finally:
            for site in sites:
                site.close()
        _check(sink, db, pki, partners, claims)


def _committed(db: psycopg.Connection[tuple[object, ...]]) -> int:
    if db.execute("SELECT to_regclass('received')").fetchone() == (None,):
        return 0
    row = db.execute("SELECT COUNT(*) FROM received").fetchone()
    return int(str(row[0])) if row else 0


def _paid(db: psycopg.Connection[tuple[object, ...]]) -> int:
    """Bills some payout run has paid so far."""
    if db.execute("SELECT to_regclass('payout_lines')").fetchone() == (None,):
        return 0
    row = db.execute("SELECT COUNT(DISTINCT bill_id) FROM payout_lines").fetchone()
    return int(str(row[0])) if row else 0


def _unanswered(db: psycopg.Connection[tuple[object, ...]]) -> int:
    """Claims not committed yet, plus their replies not yet recorded as sent."""
    messages = db.execute("SELECT COUNT(*) FROM messages").fetchone()
    unsent = db.execute(
        "SELECT COUNT(*) FROM replies WHERE state <> 'delivered' AND kind <> 'payout_decision'"
    ).fetchone()
    assert messages is not None and unsent is not None
    return CLAIMS - int(str(messages[0])) + int(str(unsent[0]))


def _give_up_after(until: float, what: str, sites: Sequence[MailSite]) -> None:
    """Fail with every instance's log tail once ``until`` (monotonic) has passed."""
    if time.monotonic() > until:
        tails = "\n".join(f"--- {s.root.name}\n{s.log_tail(15)}" for s in sites)
        pytest.fail(f"{what}:\n{tails}")


def _mail_in(dovecot: DovecotServer, partners: Sequence[Partner], claims: list[Claim]) -> None:
    """Make the claims and append them, a chunk at a time, round the mailboxes (in a thread:
    the instances work on the first chunks while the rest are made)."""
    made = _claims(partners, CLAIMS)
    for start in range(0, CLAIMS, 60):
        chunk = made[start : start + 60]
        dovecot.append_many(USERS[start // 60 % len(USERS)], [c.raw for c in chunk])
        claims.extend(chunk)


def _run(
    sites: list[MailSite],
    dovecot: DovecotServer,
    sink: SmtpSink,
    db: psycopg.Connection[tuple[object, ...]],
    partners: Sequence[Partner],
) -> list[Claim]:
    for site in sites:
        site.start()
    started = time.monotonic()
    claims: list[Claim] = []
    mailer = threading.Thread(target=_mail_in, args=(dovecot, partners, claims), daemon=True)
    mailer.start()
    deadline = time.monotonic() + 60
    while sum(len(_holding(s)) for s in sites) < len(USERS):
        _give_up_after(deadline, "the mailboxes were not all taken", sites)
        time.sleep(0.5)
    print(f"mailboxes taken after {time.monotonic() - started:.1f} s:",
          {s.root.name: sorted(_holding(s)) for s in sites})  # fmt: skip

    # SIGKILL the instance holding the most mailboxes, a quarter of the way in.
    deadline = time.monotonic() + 120
    while _committed(db) < CLAIMS // 4:
        _give_up_after(deadline, "a quarter was not committed in time", sites)
        time.sleep(0.05)
    victim = max(sites, key=lambda s: len(_holding(s)))
    orphaned = _holding(victim)
    victim.kill()
    killed_at = time.time()
    print(f"killed {victim.root.name} after {time.monotonic() - started:.1f} s")
    survivors = [s for s in sites if s is not victim]

    # SIGTERM an instance that now holds a mailbox, halfway in.
    deadline = time.monotonic() + 120
    while _committed(db) < CLAIMS // 2:
        _give_up_after(deadline, "half was not committed in time", sites)
        time.sleep(0.05)
    while not any(_holding(s) for s in survivors):  # reads the logs: not too often
        _give_up_after(deadline, "no survivor took a mailbox", sites)
        time.sleep(0.5)
    stopped = max(survivors, key=lambda s: len(_holding(s)))
    print(f"stopping {stopped.root.name} after {time.monotonic() - started:.1f} s")
    assert stopped.stop() == 0, stopped.log_tail()
    last = next(s for s in survivors if s is not stopped)

    # The last instance finishes: every mailbox, every reply.
    deadline = time.monotonic() + 240
    while mailer.is_alive() or any(dovecot.list_uids(u) for u in USERS) or _unanswered(db):
        _give_up_after(deadline, f"{_unanswered(db)} claims or replies left", sites)
        assert last.running.poll() is None, last.log_tail()
        time.sleep(0.5)
    print(f"all answered after {time.monotonic() - started:.1f} s")
    # Payout fires each minute: wait for a run after the claims (one may fall before them all).
    deadline = time.monotonic() + 75
    while _paid(db) == 0:
        _give_up_after(deadline, "no payout run paid the claims", sites)
        assert last.running.poll() is None, last.log_tail()
        time.sleep(0.5)
    time.sleep(1.0)  # the last sends are recorded
    assert last.stop() == 0, last.log_tail()
    mailer.join()

    taken_after = [
        _at(e) - killed_at
        for s in survivors
        for e in _events(s, "imap_mailbox_taken")
        if e["imap_mailbox"] in orphaned and _at(e) >= killed_at
    ]
    assert orphaned and taken_after, "nobody took the killed instance's mailboxes"
    assert min(taken_after) <= TAKEOVER_SECONDS, taken_after
    return claims


def _check(
    sink: SmtpSink,
    db: psycopg.Connection[tuple[object, ...]],
    pki: TestPki,
    partners: Sequence[Partner],
    claims: list[Claim],
) -> None:
    ids = {c.message_id for c in claims}
    # Received once, answered once, delivered.
    per_claim = db.execute(
        "SELECT m.ebxml_message_id, COUNT(*) FROM messages m GROUP BY m.ebxml_message_id"
    ).fetchall()
    assert {str(m) for m, _ in per_claim} == ids
    assert [m for m, n in per_claim if n != 1] == []
    apprecs = db.execute(
        "SELECT m.ebxml_message_id, COUNT(r.id) FROM messages m "
        "LEFT JOIN replies r ON r.received_id = m.received_id AND r.kind = 'apprec' "
        "GROUP BY m.ebxml_message_id HAVING COUNT(r.id) <> 1"
    ).fetchall()
    assert apprecs == []
    undelivered = db.execute(  # payout decisions of a last run may still wait: not checked
        "SELECT kind, state, COUNT(*) FROM replies WHERE state <> 'delivered' "
        "AND kind <> 'payout_decision' GROUP BY 1, 2"
    ).fetchall()
    assert undelivered == []

    # What the sink got: each claim's Acknowledgment and AppRec; a repeat is the same bytes.
    copies: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    for mail in sink.messages:
        header = parse_envelope(mime.unwrap(mail.data).envelope.body).header
        if header.action == "Utbetalingsvedtak":
            copies[(header.message_id, header.action)].add(mail.data)
            continue
        ref = header.ref_to_message_id or "?"
        copies[(ref, header.action)].add(mail.data)
    for claim in claims:
        for action in ("Acknowledgment", "Svarmelding"):
            sent = copies.get((claim.message_id, action), set())
            assert len(sent) == 1, f"{claim.message_id} {action}: {len(sent)} different replies"
    keys = [p.credentials.decryption_key() for p in partners]
    for mail in random.Random(1).sample(sink.messages, 40):  # a sample, fully opened
        opened = open_reply(mail.data, pki.gateway.certificate, keys)
        if opened.envelope.header.action == "Svarmelding":
            assert opened.status == "1"

    # Nothing paid twice, nothing paid beyond its target; some runs happened meanwhile.
    runs = db.execute("SELECT run_key, state FROM payout_runs ORDER BY id").fetchall()
    assert runs, "no payout run during the test"
    twice = db.execute(
        "SELECT bill_id FROM payout_lines WHERE kind = 'payment' GROUP BY bill_id "
        "HAVING COUNT(*) > 1"
    ).fetchall()
    assert twice == []
    beyond = db.execute(
        "SELECT l.bill_id FROM payout_lines l JOIN bill_status_effective e "
        "ON e.bill_id = l.bill_id GROUP BY l.bill_id, e.approved_ore "
        "HAVING SUM(l.amount_ore) > e.approved_ore OR SUM(l.amount_ore) < 0"
    ).fetchall()
    assert beyond == []
    paid = db.execute("SELECT COUNT(DISTINCT bill_id) FROM payout_lines").fetchone()
    assert paid is not None and int(str(paid[0])) > 0, "payout paid nothing: nothing was tested"
