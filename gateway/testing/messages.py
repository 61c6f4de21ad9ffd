"""Whole claim messages as a sender's MSH would mail them: ebXML MIME around a MsgHead.

Used by the tests, the fixtures generator and the benchmark. Ships in the package on purpose
(like ``structlog.testing``), so operators can produce test traffic too.
"""

from __future__ import annotations

import gzip
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.ebxml import mime
from gateway.ebxml.envelope import (
    ManifestReference,
    MessageHeader,
    Party,
    PartyId,
    build_envelope,
)


@dataclass(frozen=True, slots=True)
class Route:
    """Who sends to whom, on the ebXML level."""

    from_her: str = "8141253"
    to_her: str = "79768"
    from_role: str = "Behandler"
    to_role: str = "KontrollUtbetaler"
    cpa_id: str = "nav:qass:35065"
    service: str = "BehandlerKrav"
    service_type: str | None = "string"
    action: str = "OppgjorsMelding"
    mail_from: str = "behandler@speare.test"
    mail_to: str = "mottak@kuhr.test"


def ebxml_message(
    payload: bytes,
    *,
    route: Route = Route(),
    message_id: str | None = None,
    conversation_id: str | None = None,
    timestamp: datetime | None = None,
    compress: bool = False,
    ack_requested: bool = True,
    rng: random.Random | None = None,
) -> bytes:
    """A MIME multipart/related ebXML message carrying ``payload`` (a MsgHead document)."""
    rng = rng or random.Random()  # noqa: S311 - test ids, not secrets
    message_id = message_id or f"{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    conversation_id = conversation_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
    timestamp = timestamp or datetime.now(UTC)
    content_id = f"payload-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}@sender.test"
    header = MessageHeader(
        from_party=Party((PartyId(route.from_her, "HER"),), route.from_role),
        to_party=Party((PartyId(route.to_her, "HER"),), route.to_role),
        cpa_id=route.cpa_id,
        conversation_id=conversation_id,
        service=route.service,
        service_type=route.service_type,
        action=route.action,
        message_id=message_id,
        timestamp=timestamp,
        ref_to_message_id=None,
        time_to_live=None,
        duplicate_elimination=False,
    )
    envelope = build_envelope(
        header,
        manifest=[ManifestReference(href=f"cid:{content_id}", content_id=content_id)],
        ack_requested=ack_requested,
        ack_signed=ack_requested,
    )
    body = gzip.compress(payload, mtime=0) if compress else payload
    part = mime.OutgoingPart(
        content_id=content_id,
        content_type="application/gzip" if compress else "text/xml",
        body=body,
    )
    return mime.build(
        envelope,
        [part],
        mail_from=route.mail_from,
        mail_to=route.mail_to,
        subject=f"ebXML {route.service}/{route.action}",
        message_id=f"<{message_id}>",
        date=timestamp,
    )
