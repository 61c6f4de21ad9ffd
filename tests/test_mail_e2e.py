"""End to end over real mail: dovecot IMAP in, the real daemon process, an aiosmtpd sink out.

Every test runs ``python -m gateway run --config FILE`` on a config in a temporary directory,
with a CPA directory, our decryption key and an ``[[imap.mailboxes]]`` entry pointing at a
dovecot started by the test (``tests.support.dovecot``), and ``[outbox] kind = "smtp"``
pointing at an SMTP sink in this process (``tests.support.smtp_sink``). Claims are built as a
partner's MSH builds them (signed MsgHead, gzipped, CMS-encrypted to us, signed envelope) with
certificates from a test CA made here (``tests.support.pki``), appended to the mailbox over
IMAP, and every reply mailed out is opened as the partner would (``open_reply``: our
signatures verified, the AppRec decrypted with the partner's key).

dovecot comes from Debian's dovecot-imapd (``make deps``); without it these tests skip locally
and fail in CI.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509

from gateway.clock import local_naive
from gateway.ebxml import mime
from gateway.errors import SecurityFailure
from gateway.partners.checks import CPA_ID
from gateway.security.xmldsig import Signer
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.cpa import CpaSpec
from gateway.testing.messages import OpenedReply, Route, ebxml_message, open_reply
from tests.support import mail_site
from tests.support.dovecot import MISSING_REASON, PROCESSED_FOLDER, DovecotServer, find_dovecot
from tests.support.mail_site import SiteSettings, partner_cpa
from tests.support.pki import Credentials, TestPki
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

IMAP_USER, IMAP_PASSWORD = "kuhr", "s3cret-kuhr"
ROUTE = Route()  # CPAId nav:qass:35065, from HER 8141253 to HER 79768
#: The partner's address in its CPA (replies go there, not to the claim mail's From).
PARTNER_MAIL = "kuhr@legekontoret.test"
#: A second partner, whose only certificate has expired.
EXPIRED_ROUTE = Route(
    from_her="8141254", cpa_id="test:expired:1", mail_from="gammel@legekontoret.test"
)
EXPIRED_PARTNER_MAIL = "kuhr@gammel-lege.test"
OUR_MAIL = "mottak@kuhr.test"

SETTINGS = SiteSettings(
    name="HELFO mail e2e",
    mail_address=OUR_MAIL,
    imap_user=IMAP_USER,
    imap_password=IMAP_PASSWORD,
    spool={"poll_interval": 0.5},
    smtp={"timeout": 5, "backoff_base": 0.2, "backoff_max": 1.0, "poll_interval": 0.5},
    imap={"poll_interval": 0.5, "idle_timeout": 10, "connect_timeout": 5, "command_timeout": 20},
    daemon={"drain_seconds": 20},
)


# --- the site: dovecot, the sink, the daemon's directory ------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One mail the gateway sent, opened as its receiver would open it."""

    action: str  # Acknowledgment, MessageError or Svarmelding (the AppRec)
    ref: str  # the MessageId of the claim it answers
    message_id: str  # its own ebXML MessageId
    recipients: tuple[str, ...]
    opened: OpenedReply
    data: bytes


class MailSite(mail_site.MailSite):
    """The shared site (``tests.support.mail_site``) with our two partners' CPAs, and what the
    tests look at: the mailbox, the mails sent, the database."""

    def __init__(self, root: Path, pki: TestPki, dovecot: DovecotServer, sink: SmtpSink) -> None:
        cpas = [
            cpa_spec(pki.gateway, pki.partner),
            expired_cpa_spec(pki.gateway, expired_partner(pki)),
        ]
        super().__init__(root, pki.gateway, dovecot, sink, SETTINGS, cpas=cpas)
        self.pki = pki

    # --- mail in ---

    def append(self, mails: Sequence[bytes]) -> None:
        self.dovecot.append_many(IMAP_USER, mails)

    def folder_count(self, folder: str) -> int:
        return len(self.dovecot.list_uids(IMAP_USER, folder))

    def wait_until_inbox_empty(self, timeout: float = 30.0) -> None:
        """Until every mail is moved out of INBOX (a batch is moved after its last commit)."""
        deadline = time.monotonic() + timeout
        while self.folder_count("INBOX"):
            if time.monotonic() > deadline:
                pytest.fail(f"{self.folder_count('INBOX')} mails left in INBOX:\n{self.log_tail()}")
            time.sleep(0.05)

    # --- mail out ---

    def wait_for_mails(self, count: int, timeout: float = 60.0) -> None:
        """Until the sink holds ``count`` mails; fails with the daemon's log tail."""
        deadline = time.monotonic() + timeout
        while len(self.sink.messages) < count:
            if self.daemon is not None and self.daemon.poll() is not None:
                pytest.fail(f"the daemon exited ({self.daemon.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{len(self.sink.messages)} of {count} mails arrived within {timeout} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def replies(self) -> list[Reply]:
        """Everything the sink received, opened: our ebMS signature (and the MsgHead's, on an
        AppRec) verified, an encrypted AppRec decrypted with the partners' keys."""
        keys = [self.pki.partner.decryption_key(), expired_partner(self.pki).decryption_key()]
        found: list[Reply] = []
        for mail in self.sink.messages:
            opened = open_reply(mail.data, self.pki.gateway.certificate, keys)
            header = opened.envelope.header
            found.append(
                Reply(
                    action=header.action,
                    ref=opened.envelope.acknowledgment_ref or header.ref_to_message_id or "?",
                    message_id=header.message_id,
                    recipients=mail.recipients,
                    opened=opened,
                    data=mail.data,
                )
            )
        return found

    # --- the database ---

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10) as db:
            return [tuple(row) for row in db.execute(sql).fetchall()]

    def committed(self) -> int:
        """Received rows committed so far (0 before the database has its schema)."""
        if not self.database.exists():
            return 0
        try:
            return int(str(self.query("SELECT COUNT(*) FROM received")[0][0]))
        except sqlite3.OperationalError:  # created, schema not yet committed
            return 0


@pytest.fixture(scope="session")
def dovecot_installed() -> None:
    """Skip where dovecot is not installed; in CI its absence is a failure."""
    if find_dovecot() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have dovecot installed: {MISSING_REASON}")
        pytest.skip(MISSING_REASON)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    """A test CA with the gateway's and the partner's certificates (valid now)."""
    return TestPki.create()


@pytest.fixture
def site(dovecot_installed: None, pki: TestPki, tmp_path: Path) -> Iterator[MailSite]:
    with DovecotServer({IMAP_USER: IMAP_PASSWORD}) as dovecot, SmtpSink() as sink:
        mail_site = MailSite(tmp_path, pki, dovecot, sink)
        try:
            yield mail_site
        finally:
            mail_site.close()


# --- certificates, CPAs and claim mails ----------------------------------------------------------


def cpa_spec(us: Credentials, partner: Credentials) -> CpaSpec:
    """Our CPA with the partner: encrypted, gzipped requests; both sides' certificates."""
    return partner_cpa(ROUTE.cpa_id, us, partner, our_mail=OUR_MAIL, partner_mail=PARTNER_MAIL)


def expired_partner(pki: TestPki) -> Credentials:
    """The second partner's certificate: expired yesterday."""
    now = datetime.now(UTC)
    return pki.ca.issue(
        "Gammel lege",
        key_name="expired-partner",
        her_id=EXPIRED_ROUTE.from_her,
        not_before=now - timedelta(days=731),
        not_after=now - timedelta(days=1),
    )


def expired_cpa_spec(us: Credentials, partner: Credentials) -> CpaSpec:
    return partner_cpa(
        EXPIRED_ROUTE.cpa_id,
        us,
        partner,
        our_mail=OUR_MAIL,
        partner_mail=EXPIRED_PARTNER_MAIL,
        partner_her=EXPIRED_ROUTE.from_her,
        partner_name="Gammel lege",
    )


@dataclass(frozen=True, slots=True)
class ClaimMail:
    message_id: str  # the ebXML MessageId
    bills: int
    raw: bytes


#: "The usual": the partner signs, and encrypts to our certificate.
Usual = Literal["usual"]
USUAL: Usual = "usual"


def claim_mail(
    pki: TestPki,
    seed: int,
    *,
    route: Route = ROUTE,
    bills: int | None = None,
    payload_signer: Signer | Usual | None = USUAL,
    envelope_signer: Signer | Usual | None = USUAL,
    encrypt_to: x509.Certificate | Usual | None = USUAL,
) -> ClaimMail:
    """A claim as a partner's MSH mails it: MsgHead signed, gzipped, encrypted to us, envelope
    signed. Treatment dates lie weeks back (in the past, within every deadline)."""
    rng = random.Random(seed)
    count = bills if bills is not None else 1 + seed % 3
    day = local_naive(datetime.now(UTC)).date() - timedelta(days=20 + seed % 30)
    head, krav = make_claim(
        rng=rng,
        practitioner=("tannlege", "lege", "psykolog", "lab")[seed % 4],
        bills=count,
        sender=default_sender(route.from_her),
        receiver=default_receiver(),
        start=datetime.combine(day, clock_time(8, 0)),
    )
    message_id = f"mail-e2e-{seed:05d}@sender.test"
    raw = ebxml_message(
        msghead_with_bkm(head, krav),
        route=route,
        rng=rng,
        message_id=message_id,
        compress=True,
        payload_signer=pki.partner.signer() if isinstance(payload_signer, str) else payload_signer,
        envelope_signer=(
            pki.partner.signer() if isinstance(envelope_signer, str) else envelope_signer
        ),
        encrypt_to=pki.gateway.certificate if isinstance(encrypt_to, str) else encrypt_to,
    )
    return ClaimMail(message_id, count, raw)


def _base64_lines(body: bytes) -> bytes:
    """``body`` as ``mime.build`` writes it."""
    encoded = base64.b64encode(body)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def with_part(raw: bytes, damage: Callable[[bytes], bytes]) -> bytes:
    """``raw`` with its one payload part's bytes replaced by ``damage(bytes)``."""
    (part,) = mime.unwrap(raw).attachments
    old = _base64_lines(part.body)
    assert raw.count(old) == 1
    return raw.replace(old, _base64_lines(damage(part.body)))


# --- checks ---------------------------------------------------------------------------------------


def by_ref(replies: Sequence[Reply]) -> dict[str, Counter[str]]:
    """claim MessageId -> Counter of the actions that answered it."""
    found: dict[str, Counter[str]] = {}
    for reply in replies:
        found.setdefault(reply.ref, Counter())[reply.action] += 1
    return found


def bill_count(site: MailSite) -> int:
    return int(str(site.query("SELECT COUNT(*) FROM bills")[0][0]))


def outcomes(site: MailSite) -> dict[str, int]:
    return {
        str(outcome): int(str(n))
        for outcome, n in site.query("SELECT outcome, COUNT(*) FROM received GROUP BY outcome")
    }


# --- the tests ------------------------------------------------------------------------------------


def test_a_claim_mailed_in_is_acknowledged_and_answered_with_an_encrypted_signed_apprec(
    site: MailSite, pki: TestPki
) -> None:
    claim = claim_mail(pki, 1, bills=2)
    site.start()
    site.append([claim.raw])
    site.wait_for_mails(2)
    ack, apprec = sorted(site.replies(), key=lambda r: r.action)  # Acknowledgment < Svarmelding

    assert ack.action == "Acknowledgment"
    assert ack.ref == claim.message_id
    assert ack.opened.msghead is None
    assert ack.recipients == (PARTNER_MAIL,)

    assert apprec.action == "Svarmelding"
    assert apprec.ref == claim.message_id
    assert apprec.recipients == (PARTNER_MAIL,)
    # Encrypted for the partner (open_reply decrypted it with the partner's key), the bare
    # AppRec inside covered by our signed envelope's cid: reference (verified).
    assert apprec.opened.content_types == ("application/pkcs7-mime",)
    assert apprec.opened.msghead is None
    (part,) = mime.unwrap(apprec.data).attachments
    assert not part.body.lstrip().startswith(b"<")  # CMS, not XML
    assert apprec.opened.status == "1"
    assert apprec.opened.error_codes == ()
    with pytest.raises(SecurityFailure, match="ikke kryptert til"):
        open_reply(apprec.data, pki.gateway.certificate, [pki.gateway.decryption_key()])

    site.wait_until_inbox_empty()
    assert site.stop() == 0
    assert outcomes(site) == {"accepted": 1}
    assert bill_count(site) == 2
    # Committed, then moved out of the intake folder.
    assert site.folder_count("INBOX") == 0
    assert site.folder_count(PROCESSED_FOLDER) == 1
    assert site.query("SELECT state FROM replies ORDER BY id") == [("delivered",), ("delivered",)]


def test_the_same_mail_delivered_twice_is_processed_once_and_acknowledged_twice(
    site: MailSite, pki: TestPki
) -> None:
    claim = claim_mail(pki, 2, bills=3)
    site.start()
    site.append([claim.raw])
    site.wait_for_mails(2)
    site.append([claim.raw])  # the same bytes again, as a mail server may deliver them
    site.wait_for_mails(4)
    time.sleep(0.5)  # nothing more may come
    replies = site.replies()
    assert len(replies) == 4

    acks = [r for r in replies if r.action == "Acknowledgment"]
    apprecs = [r for r in replies if r.action == "Svarmelding"]
    assert len(acks) == len(apprecs) == 2
    # Answered again with the stored replies, byte for byte: the same Acknowledgment and the same
    # AppRec (same ebXML MessageId, so the partner's duplicate elimination drops the second).
    assert acks[0].data == acks[1].data
    assert apprecs[0].data == apprecs[1].data
    assert {r.ref for r in replies} == {claim.message_id}

    site.wait_until_inbox_empty()
    assert site.stop() == 0
    assert outcomes(site) == {"accepted": 1, "duplicate": 1}
    assert bill_count(site) == 3
    assert site.folder_count("INBOX") == 0
    assert site.folder_count(PROCESSED_FOLDER) == 2


def test_replies_wait_while_the_smtp_server_is_down_and_all_go_out_when_it_returns(
    site: MailSite, pki: TestPki
) -> None:
    claims = [claim_mail(pki, 100 + i) for i in range(10)]
    site.sink.stop()
    site.start()
    site.append([c.raw for c in claims])
    deadline = time.monotonic() + 60
    while site.committed() < len(claims):
        assert time.monotonic() < deadline, site.log_tail()
        time.sleep(0.1)
    time.sleep(1.5)  # the sender keeps failing and pausing meanwhile
    assert site.sink.messages == []
    pending = site.query("SELECT COUNT(*) FROM replies WHERE state = 'pending'")[0][0]
    assert pending == 2 * len(claims)
    assert site.log_events("smtp_server_unreachable") >= 1

    site.sink.start()
    site.wait_for_mails(2 * len(claims), timeout=30)
    time.sleep(0.5)
    replies = site.replies()
    expected = {c.message_id: Counter({"Acknowledgment": 1, "Svarmelding": 1}) for c in claims}
    assert by_ref(replies) == expected
    assert all(r.opened.status == "1" for r in replies if r.action == "Svarmelding")

    site.wait_until_inbox_empty()
    assert site.stop() == 0
    assert site.query("SELECT state, COUNT(*) FROM replies GROUP BY state") == [
        ("delivered", 2 * len(claims))
    ]
    assert site.query("SELECT COUNT(*) FROM replies WHERE state = 'dead'") == [(0,)]


def test_an_imap_server_restart_mid_run_loses_nothing(site: MailSite, pki: TestPki) -> None:
    first = [claim_mail(pki, 200 + i) for i in range(30)]
    second = [claim_mail(pki, 300 + i) for i in range(20)]
    site.start()
    site.append([c.raw for c in first])
    deadline = time.monotonic() + 60
    while site.committed() < 5:
        assert time.monotonic() < deadline, site.log_tail()
        time.sleep(0.01)
    site.dovecot.restart()  # every connection dropped, in the middle of the batch
    site.append([c.raw for c in second])
    everything = first + second
    site.wait_for_mails(2 * len(everything), timeout=90)
    time.sleep(0.5)

    expected = {c.message_id: Counter({"Acknowledgment": 1, "Svarmelding": 1}) for c in everything}
    assert by_ref(site.replies()) == expected
    assert site.log_events("imap_mailbox_failed") >= 1, "the restart broke the session"
    assert site.log_events("imap_connected") >= 2, "and the gateway reconnected"
    site.wait_until_inbox_empty()
    assert site.stop() == 0
    assert outcomes(site) == {"accepted": len(everything)}
    assert bill_count(site) == sum(c.bills for c in everything)
    assert site.folder_count("INBOX") == 0
    assert site.folder_count(PROCESSED_FOLDER) == len(everything)


@pytest.mark.slow
def test_sigkill_at_random_points_then_restart_answers_every_mail_and_processes_none_twice(
    site: MailSite, pki: TestPki
) -> None:
    claims = [claim_mail(pki, 1000 + i) for i in range(200)]
    rng = random.Random()
    site.append([c.raw for c in claims])
    for kill_after in sorted(rng.sample(range(10, 180), 3)):
        site.start()
        deadline = time.monotonic() + 90
        while site.committed() < kill_after:
            assert time.monotonic() < deadline, site.log_tail()
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))  # land anywhere: pipeline, commit, move, send
        site.kill()
    site.start()
    # Each claim needs its Acknowledgment and AppRec; a kill between sending a reply and
    # recording that it was sent may repeat a reply (at least once, by design).
    site.wait_for_mails(2 * len(claims), timeout=120)
    deadline = time.monotonic() + 30
    while True:
        answered = by_ref(site.replies())
        if all(
            answered.get(c.message_id, Counter())["Svarmelding"] >= 1
            and answered[c.message_id]["Acknowledgment"] >= 1
            for c in claims
        ):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{len(answered)} of {len(claims)} claims answered:\n{site.log_tail()}")
        time.sleep(1.0)
    time.sleep(0.5)
    site.wait_until_inbox_empty()
    assert site.stop() == 0

    replies = site.replies()
    assert {r.ref for r in replies} == {c.message_id for c in claims}
    assert {r.action for r in replies} == {"Acknowledgment", "Svarmelding"}
    # A repeated reply is the same message (the same ebXML MessageId), never a second decision.
    for kind in ("Acknowledgment", "Svarmelding"):
        ids: dict[str, set[str]] = {}
        for r in replies:
            if r.action == kind:
                ids.setdefault(r.ref, set()).add(r.message_id)
        assert all(len(v) == 1 for v in ids.values()), f"{kind}: two different replies to a claim"
    assert all(r.opened.status == "1" for r in replies if r.action == "Svarmelding")
    repeats = len(replies) - 2 * len(claims)
    assert repeats <= 3 * 2 * 50, "at most one sender pass repeated per kill"

    # Processed exactly once: one received row, one message and its bills per claim.
    assert outcomes(site) == {"accepted": len(claims)}
    assert site.query("SELECT COUNT(DISTINCT ebxml_message_id) FROM messages") == [(len(claims),)]
    assert bill_count(site) == sum(c.bills for c in claims)
    assert site.query("SELECT COUNT(*) FROM replies WHERE state != 'delivered'") == [(0,)]
    assert site.folder_count("INBOX") == 0
    assert site.folder_count(PROCESSED_FOLDER) == len(claims)


def test_bad_claims_get_the_right_message_error_or_apprec_code_each(
    site: MailSite, pki: TestPki
) -> None:
    stranger = pki.ca.issue("Testlegen", key_name="stranger")
    expired = expired_partner(pki)
    cases = {
        "good": claim_mail(pki, 501),
        "wrong-signature": claim_mail(pki, 502, payload_signer=stranger.signer()),
        "unknown-cpa": claim_mail(
            pki, 503, route=dataclasses.replace(ROUTE, cpa_id="nav:qass:99999")
        ),
        # The expired partner's MsgHead signature, the ebXML envelope unsigned: AppRec S02.
        "expired-certificate": claim_mail(
            pki,
            504,
            route=EXPIRED_ROUTE,
            payload_signer=expired.signer(),
            envelope_signer=None,
        ),
        # ... and with the envelope signed by it: refused on the ebXML level.
        "expired-certificate-signed-envelope": claim_mail(
            pki,
            505,
            route=EXPIRED_ROUTE,
            payload_signer=expired.signer(),
            envelope_signer=expired.signer(),
        ),
    }
    corrupt = claim_mail(pki, 506, envelope_signer=None)
    cases["corrupt-cms"] = dataclasses.replace(
        corrupt, raw=with_part(corrupt.raw, lambda blob: blob[: len(blob) // 2])
    )
    site.start()
    site.append([c.raw for c in cases.values()])
    # good, wrong signature, expired: Acknowledgment + AppRec; the others one MessageError.
    site.wait_for_mails(3 * 2 + 3)
    time.sleep(0.5)
    replies = site.replies()
    assert len(replies) == 9

    def answer(name: str) -> tuple[str, ...]:
        """What ``name`` got: AppRec status and codes, or the MessageError's code(s)."""
        mine = [r for r in replies if r.ref == cases[name].message_id]
        result: list[str] = []
        for r in sorted(mine, key=lambda r: r.action):
            if r.action == "Svarmelding":
                result += [f"AppRec {r.opened.status}", *r.opened.error_codes]
            elif r.action == "MessageError":
                result += [f"MessageError {e.code}" for e in r.opened.envelope.error_list]
            else:
                result.append(r.action)
        return tuple(result)

    assert {name: answer(name) for name in cases} == {
        "good": ("Acknowledgment", "AppRec 1"),
        "wrong-signature": ("Acknowledgment", "AppRec 2", "S01"),
        "unknown-cpa": ("MessageError ValueNotRecognized",),
        "expired-certificate": ("Acknowledgment", "AppRec 2", "S02"),
        "expired-certificate-signed-envelope": ("MessageError SecurityFailure",),
        "corrupt-cms": ("MessageError SecurityFailure",),
    }
    (unknown,) = [r for r in replies if r.ref == cases["unknown-cpa"].message_id]
    assert unknown.opened.envelope.error_list[0].location == CPA_ID
    (expired_apprec,) = [
        r
        for r in replies
        if r.ref == cases["expired-certificate"].message_id and r.action == "Svarmelding"
    ]
    assert expired_apprec.recipients == (EXPIRED_PARTNER_MAIL,)
    site.wait_until_inbox_empty()
    assert site.stop() == 0
    # Only the good claim's bills were stored as anything but rejected.
    approved = site.query("SELECT COUNT(*) FROM bills WHERE status = 'godkjent'")[0][0]
    assert approved == cases["good"].bills
    assert site.folder_count("INBOX") == 0
