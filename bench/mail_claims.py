"""The mail benchmark's partners and claims, and the check of what came back.

``PARTNERS`` partners share one key, with a certificate and a CPA each; a claim is secured as a
partner's MSH sends it (MsgHead signed, gzipped, CMS-encrypted to us, ebXML envelope signed).
Every reply is opened as its partner would open it (``open_reply``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.common import past_claim
from gateway.claims.model import MsgHead
from gateway.clock import local_naive, utc_now
from gateway.security.xmldsig import Signer
from gateway.testing.claims import default_receiver, default_sender, msghead_with_bkm
from gateway.testing.cpa import CpaSpec
from gateway.testing.messages import Route, ebxml_message, open_reply
from tests.support.mail_site import partner_cpa
from tests.support.pki import Credentials, TestPki
from tests.support.smtp_sink import SmtpSink

PARTNERS = 10
FIRST_PARTNER_HER = 8141253
OUR_HER = "79768"
OUR_MAIL = "mottak@kuhr.bench"
#: Problems listed in the output (the rest are counted).
MAX_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class Partner:
    her_id: str
    route: Route
    credentials: Credentials
    signer: Signer
    cpa: CpaSpec


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: str  # the ebXML MessageId
    raw: bytes
    head: MsgHead
    partner: Partner


def make_partners(pki: TestPki) -> list[Partner]:
    """``PARTNERS`` partners (one key, a certificate each), each with its CPA with us."""
    partners: list[Partner] = []
    for k in range(PARTNERS):
        her = str(FIRST_PARTNER_HER + k)
        credentials = pki.ca.issue(f"Benkelege {k}", key_name="partner", her_id=her)
        mail = f"lege{k}@bench.test"
        route = Route(from_her=her, cpa_id=f"bench:cpa:{k}", mail_from=mail, mail_to=OUR_MAIL)
        cpa = partner_cpa(
            route.cpa_id,
            pki.gateway,
            credentials,
            our_mail=OUR_MAIL,
            partner_mail=mail,
            partner_her=her,
            partner_name=f"Benkeklinikk {k} AS",
        )
        partners.append(Partner(her, route, credentials, credentials.signer(), cpa))
    return partners


def make_claims(
    pki: TestPki, partners: Sequence[Partner], *, count: int, bills: int, seed: int
) -> list[Claim]:
    """``count`` distinct claims, secured as a partner's MSH sends them."""
    rng = random.Random(seed)
    today = local_naive(utc_now()).date()
    claims: list[Claim] = []
    for i in range(count):
        partner = rng.choice(partners)
        head, krav = past_claim(
            rng,
            today=today,
            bills=bills,
            sender=default_sender(partner.her_id, name=f"Benkeklinikk {partner.her_id} AS"),
            receiver=default_receiver(OUR_HER),
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
