"""The one piece of floor work both benchmarks share: build an OK AppRec, and sign it as it goes.

The floor is what no gateway can skip for a message; the claim's MsgHead is known from
generation, so the floor does not even read it. The AppRec goes bare (as the health network
carries it): its signature is the ebXML envelope's, a ``cid:`` reference over the payload part.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import gateway
from gateway.claims.model import MsgHead, Organisation
from gateway.ebxml.compose import build_envelope, serialize
from gateway.ebxml.model import ManifestReference, MessageHeader, Party, PartyId
from gateway.receipts.apprec import AppRec, AppRecStatus, serialize_apprec
from gateway.security.signatures import sign_ebxml_envelope
from gateway.security.xmldsig import Signer


def ok_apprec(head: MsgHead, us: Organisation, now: datetime) -> bytes:
    """The bare OK AppRec for ``head`` (``now``: local, naive), as the payload carries it."""
    apprec = AppRec(
        id=str(uuid.uuid4()),
        gen_date=now,
        sender=us,
        receiver=head.sender,
        status=AppRecStatus.OK,
        errors=(),
        original_msg_type=head.msg_type,
        original_issue_date=head.gen_date,
        original_msg_id=head.msg_id,
        software_name="gateway",
        software_version=gateway.__version__,
    )
    return serialize_apprec(apprec)


def signed_ok_apprec(head: MsgHead, us: Organisation, signer: Signer, now: datetime) -> bytes:
    """``ok_apprec`` and the signed ebXML envelope that covers it (its ``cid:`` reference):
    the signing work one AppRec costs. Returns the signed envelope."""
    document = ok_apprec(head, us, now)
    content_id = f"apprec-{uuid.uuid4().hex}@floor"
    header = MessageHeader(
        from_party=Party((PartyId("79768", "HER"),), None),
        to_party=Party((PartyId(head.sender.her_id or "0", "HER"),), None),
        cpa_id="floor",
        conversation_id=str(uuid.uuid4()),
        service="BehandlerKrav",
        service_type="string",
        action="Svarmelding",
        message_id=f"{uuid.uuid4()}@floor",
        timestamp=datetime.now(UTC),
    )
    envelope = build_envelope(
        header,
        manifest=[ManifestReference(href=f"cid:{content_id}", content_id=content_id)],
        ack_requested=True,
    )
    return serialize(sign_ebxml_envelope(envelope, signer, {content_id: document}))
