"""The mail benchmark's floor: the work no gateway can skip for a secured claim.

MIME unwrap, the envelope's signature, CMS decrypt + gunzip, the MsgHead's signature, schema
validation, a signed AppRec encrypted to the partner, and two signed reply envelopes in MIME;
with loaded keys, one claim at a time, in this process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from bench.common import Timings
from bench.floor import ok_apprec
from bench.mail_claims import OUR_MAIL, Claim
from gateway.clock import local_naive
from gateway.config import IdentityConfig
from gateway.ebxml import mime
from gateway.ebxml.compose import build_envelope, reply_header, serialize
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import ManifestReference
from gateway.ebxml.signals import build_acknowledgment
from gateway.security import cms
from gateway.security.signatures import sign_ebxml_envelope, verify_ebxml_envelope, verify_msghead
from gateway.validation.catalog import SchemaCatalog
from tests.support.pki import TestPki


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
        apprec_bytes = ok_apprec(head, us, local)
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
        parts.add("build AppRec (bare)", t6 - t5)
        parts.add("CMS encrypt AppRec", t7 - t6)
        parts.add("2 reply envelopes signed + MIME", t8 - t7)
        totals.append(t8 - t0)
    return totals, parts


def cms_content_type() -> str:
    return "application/pkcs7-mime; smime-type=enveloped-data"
