"""The ebXML message that carries one stored payout decision, along its route.

The envelope is signed (``ds:Signature`` in ``SOAP:Header``, a ``cid:`` reference over the payload
part), the payload is the signed decision, gzipped and CMS-encrypted to the receiver when the
route (its CPA, ``gateway.payout.routing``) says so. A new MessageId per copy sent; the decision
inside never changes.
"""

from __future__ import annotations

import gzip
import uuid
from datetime import datetime

from gateway.ebxml import mime
from gateway.ebxml.compose import build_envelope, serialize
from gateway.ebxml.model import ManifestReference, MessageHeader, Party, PartyId
from gateway.payout.routing import ACTION, SERVICE, SERVICE_TYPE, DecisionRoute
from gateway.payout.values import PayoutDeps, StoredDecision
from gateway.security import cms
from gateway.security.signatures import sign_ebxml_envelope

__all__ = ["ebxml_message"]


def ebxml_message(
    decision: StoredDecision,
    deps: PayoutDeps,
    now: datetime,
    route: DecisionRoute | None = None,
) -> tuple[str, bytes]:
    """The MIME ebXML message carrying ``decision`` along ``route`` (default: the register's
    address, default Service/Action, not encrypted): (ebXML MessageId, SMTP-ready bytes)."""
    route = route or DecisionRoute(
        decision.cpa_id, SERVICE, SERVICE_TYPE, ACTION, decision.recipient
    )
    domain = _mail_domain(deps.identity.mail_address)
    message_id = f"{deps.new_id()}@{domain}"
    content_id = f"vedtak-{uuid.uuid5(uuid.NAMESPACE_URL, message_id).hex}@{domain}"
    header = MessageHeader(
        from_party=Party(
            party_ids=(PartyId(deps.identity.her_id, "HER"),), role=deps.identity.ebxml_role
        ),
        to_party=Party(party_ids=(PartyId(decision.receiver_her, "HER"),)),
        cpa_id=route.cpa_id,
        conversation_id=deps.new_id(),
        service=route.service,
        service_type=route.service_type,
        action=route.action,
        message_id=message_id,
        timestamp=now,
        duplicate_elimination=True,
    )
    envelope = build_envelope(
        header,
        manifest=[ManifestReference(href=f"cid:{content_id}", content_id=content_id)],
        ack_requested=True,
    )
    body, content_type = decision.body, "text/xml"
    if route.compress:
        body, content_type = gzip.compress(body, mtime=0), "application/x-gzip"
    if route.encrypt_to is not None:
        body = cms.encrypt(body, route.encrypt_to, at=now)
        content_type = "application/pkcs7-mime; smime-type=enveloped-data"
    signed = serialize(sign_ebxml_envelope(envelope, deps.signer, {content_id: body}))
    part = mime.OutgoingPart(content_id=content_id, content_type=content_type, body=body)
    mail = mime.build(
        signed,
        [part],
        mail_from=deps.identity.mail_address,
        mail_to=route.recipient,
        subject=f"Utbetalingsvedtak {decision.vedtak_id}",
        message_id=f"<{message_id}>",
        date=now,
    )
    return message_id, mail


def _mail_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else "gateway.local"
