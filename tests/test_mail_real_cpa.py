"""Issue 11's "done when": a claim from the real NAV CPA's partner, mailed in over IMAP signed,
gzipped and CMS-encrypted, is answered with a bare AppRec packaged as that CPA says, read back
the way an EPJ reads it.

The real CPA (``../shared/standards``) is used as it is, its certificates swapped for the test
PKI's (``tests.support.real_cpa``): nobody holds the real keys. The daemon runs as its own
process against a real dovecot and an SMTP sink (``tests.support.mail_site``). The EPJ side uses
nothing of the gateway's answer code: it verifies our envelope signature (the ``cid:`` reference
over the payload part), decrypts with the partner's key, validates the AppRec against the
official XSD and looks each ``Error/@V`` up in the shipped code list file.
"""

from __future__ import annotations

import csv
import dataclasses
import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import pytest
from lxml import etree

from gateway.clock import local_naive
from gateway.ebxml import mime
from gateway.receipts.apprec import APPREC_NS
from gateway.rules.codes import DEFAULT_CODE_SYSTEM
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ENCRYPTED_CONTENT_TYPE, Route, ebxml_message, open_reply
from tests.support import mail_site
from tests.support.dovecot import DovecotServer
from tests.support.pki import TestPki
from tests.support.real_cpa import REAL_CPA, with_test_certificates
from tests.support.smtp_sink import SmtpSink
from tests.test_mail_e2e import IMAP_PASSWORD, IMAP_USER, SETTINGS, dovecot_installed

pytestmark = [pytest.mark.integration, pytest.mark.conformance]

__all__ = ["dovecot_installed"]  # a fixture, imported to be found here

#: The real CPA's sender of claims, and where its CPA says answers go.
ROUTE = Route()  # CPAId nav:qass:35065, HER 8141253 (Behandler) -> HER 79768 (KontrollUtbetaler)
REAL_PARTNER_MAIL = "example@example.com"
AR = f"{{{APPREC_NS}}}"
CODE_LIST = Path(__file__).resolve().parents[1] / "gateway" / "rules" / "kodeverk" / "merknader.csv"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create()


@pytest.fixture
def site(
    dovecot_installed: None, pki: TestPki, standards: Path, tmp_path: Path
) -> Iterator[mail_site.MailSite]:
    with DovecotServer({IMAP_USER: IMAP_PASSWORD}) as dovecot, SmtpSink() as sink:
        site = mail_site.MailSite(tmp_path, pki.gateway, dovecot, sink, SETTINGS, cpas=[])
        real = with_test_certificates(
            (standards / REAL_CPA).read_bytes(),
            our_her=SETTINGS.her_id,
            ours=pki.gateway.certificate,
            theirs=pki.partner.certificate,
        )
        (tmp_path / "partners" / "nav-qass-35065.xml").write_bytes(real)
        try:
            yield site
        finally:
            site.close()


def claim_with_refused_bills(pki: TestPki) -> tuple[bytes, dict[str, str]]:
    """A claim of three bills: one fine, one dated in the future, one repeating the first's
    Guid; signed, gzipped and encrypted as the partner's CPA package says. Returns the mail and
    the refused bills' RegningNr -> why."""
    day = local_naive(datetime.now(UTC)).date() - timedelta(days=20)
    head, krav = make_claim(
        rng=random.Random(11),
        practitioner="lege",
        bills=3,
        sender=default_sender(ROUTE.from_her),
        receiver=default_receiver(),
        start=datetime.combine(day, clock_time(8, 0)),
    )
    bills = list(krav.regninger)
    future = local_naive(datetime.now(UTC)) + timedelta(days=40)
    bills[1] = dataclasses.replace(bills[1], dato_tid=future.replace(microsecond=0))
    bills[2] = dataclasses.replace(bills[2], guid=bills[0].guid)
    krav = dataclasses.replace(krav, regninger=tuple(bills))
    raw = ebxml_message(
        msghead_with_bkm(head, krav),
        route=ROUTE,
        rng=random.Random(12),
        message_id="real-cpa-1@sender.test",
        compress=True,
        payload_signer=pki.partner.signer(),
        envelope_signer=pki.partner.signer(),
        encrypt_to=pki.gateway.certificate,
    )
    return raw, {bills[1].regning_nr: "future", bills[2].regning_nr: "guid again"}


def published_codes() -> set[str]:
    """The numbers of the shipped code list file, read as an EPJ vendor would."""
    with CODE_LIST.open(encoding="utf-8", newline="") as file:
        return {row["kode"] for row in csv.DictReader(file)}


def test_a_claim_under_the_real_cpa_is_answered_with_a_bare_cpa_packaged_apprec(
    site: mail_site.MailSite, pki: TestPki, standards: Path
) -> None:
    raw, refused = claim_with_refused_bills(pki)
    site.start()
    site.dovecot.append_many(IMAP_USER, [raw])
    deadline = time.monotonic() + 90
    while len(site.sink.messages) < 2:  # the Acknowledgment and the AppRec
        assert time.monotonic() < deadline, f"no answer in time:\n{site.log_tail()}"
        assert site.running.poll() is None, site.log_tail()
        time.sleep(0.05)
    partner_key = [pki.partner.decryption_key()]
    opened = [
        (open_reply(m.data, pki.gateway.certificate, partner_key), m) for m in site.sink.messages
    ]
    ((answer, mail),) = [(r, m) for r, m in opened if r.envelope.header.action == "Svarmelding"]
    assert mail.recipients == (REAL_PARTNER_MAIL,)  # the CPA's endpoint for the partner

    # Packaged as the real CPA's NAV_package_apprec_v1p0 says: CMS enveloped-data, the bare
    # AppRec v1.0 inside (NAV_message_apprec_v1p0), DuplicateElimination (perMessage).
    assert answer.content_types == (ENCRYPTED_CONTENT_TYPE.split(";")[0],)
    assert answer.msghead is None
    assert answer.envelope.header.duplicate_elimination
    assert answer.envelope.header.cpa_id == "nav:qass:35065"
    (part,) = mime.unwrap(mail.data).attachments
    assert not part.body.lstrip().startswith(b"<")
    apprec = answer.apprec
    assert apprec is not None and apprec.tag == f"{AR}AppRec"

    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    schema = etree.XMLSchema(etree.parse(str(standards / "apprec-v1.0/AppRec-v1.0.xsd"), parser))
    assert schema.validate(apprec), schema.error_log

    # The EPJ's reading: status 3, one complete Error per finding, each code in the list.
    assert apprec.find(f"{AR}Status").get("V") == "3"  # type: ignore[union-attr]
    errors = apprec.findall(f"{AR}Error")
    codes = published_codes()
    for error in errors:
        assert error.get("S") == DEFAULT_CODE_SYSTEM
        assert (error.get("V") or "").isdigit() and error.get("V") in codes
        assert error.get("DN")
        assert error.get("OT") in refused
    with sqlite3.connect(f"file:{site.database}?mode=ro", uri=True) as db:
        findings = db.execute(
            "SELECT b.regning_nr, f.code FROM findings f JOIN bills b ON b.id = f.bill_id "
            "WHERE b.status = 'avvist' AND f.severity != 'warning' ORDER BY b.position, f.id"
        ).fetchall()
    assert [e.get("OT") for e in errors] == [str(r[0]) for r in findings]
    assert {e.get("OT") for e in errors} == set(refused)  # both refused bills, one per finding
    assert site.stop() == 0
