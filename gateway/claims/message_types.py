"""The message types this gateway receives, declared in one place.

A ``MessageType`` says where a type lives: the ebXML Service and Action it arrives under, the
Service and Action of our AppRec reply, the namespace of its document inside the MsgHead
(``MsgHead/Document/RefDoc/Content/*``) and the function that reads that document into a claim.
The addressing checks (``gateway.partners.addressing``), the pipeline and the replies
(``gateway.receipts``) all take it from here.

Adding a message type (another claim format, say) is a module with its reader, plus a
``MessageType`` value listed in ``MESSAGE_TYPES`` below; nothing else is edited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from gateway.claims.bkm import BKM_NS, parse_behandlerkrav
from gateway.claims.model import BehandlerKrav
from gateway.claims.msghead import MSGHEAD_NS, MsgHeadDocument
from gateway.errors import UnsupportedMessageType

__all__ = [
    "BEHANDLERKRAV",
    "MESSAGE_TYPES",
    "Claim",
    "MessageType",
    "document_type",
    "expected_for",
]

_CONTENT_PATH = f"{{{MSGHEAD_NS}}}Document/{{{MSGHEAD_NS}}}RefDoc/{{{MSGHEAD_NS}}}Content/*"


@dataclass(frozen=True, slots=True)
class MessageType:
    """One message type we receive, and how we answer it."""

    name: str
    """The document's name, as senders know it (quoted in error texts)."""
    service: str
    """The ebXML ``eb:Service`` of the message."""
    action: str
    """The ebXML ``eb:Action`` of the message."""
    reply_service: str
    """The ebXML ``eb:Service`` of our AppRec reply."""
    reply_action: str
    """The ebXML ``eb:Action`` of our AppRec reply."""
    namespace: str
    """The namespace of the document the MsgHead carries."""
    read: Callable[[etree._Element], BehandlerKrav]
    """Reads that document; raises ``SchemaInvalid``/``UnsupportedMessageType``."""

    def described(self) -> str:
        return f"{self.name} ({self.namespace})"


#: KITH Behandlerkravmelding: a practitioner's settlement claim (oppgjørskrav).
BEHANDLERKRAV = MessageType(
    name="BehandlerKrav",
    service="BehandlerKrav",
    action="OppgjorsMelding",
    reply_service="BehandlerKrav",
    reply_action="Svarmelding",
    namespace=BKM_NS,
    read=parse_behandlerkrav,
)

#: Every type we receive; the first is the one named when a message matches none.
MESSAGE_TYPES: tuple[MessageType, ...] = (BEHANDLERKRAV,)


@dataclass(frozen=True, slots=True, eq=False)
class Claim:
    """A MsgHead read as its message type: the document and the claim it carries."""

    document: MsgHeadDocument
    krav: BehandlerKrav
    message_type: MessageType


def expected_for(service: str, action: str) -> MessageType:
    """The type an ebXML message with this Service and Action is checked against: the one that
    has both, else one with the Service, else the first. The header checks then name what is
    wrong with it (an unknown Service, an Action its Service does not have)."""
    exact = [t for t in MESSAGE_TYPES if (t.service, t.action) == (service, action)]
    same_service = [t for t in MESSAGE_TYPES if t.service == service]
    return (exact or same_service or list(MESSAGE_TYPES))[0]


def document_type(root: etree._Element, expected: MessageType | None) -> MessageType:
    """The type of a received MsgHead document, or ``UnsupportedMessageType``.

    ``expected`` is the type its ebXML header named (None for a bare MsgHead): its document must
    be of that type. Say "not a message type we take" rather than a schema error about a wildcard.
    """
    root_name = etree.QName(root)
    if root_name.namespace != MSGHEAD_NS:
        raise UnsupportedMessageType(
            f"Rotelementet er {{{root_name.namespace}}}{root_name.localname}; forventet MsgHead "
            f"({MSGHEAD_NS})."
        )
    accepted = (expected,) if expected is not None else MESSAGE_TYPES
    content = root.find(_CONTENT_PATH)
    if content is None:
        return accepted[0]  # no document: the schema check and the MsgHead reader say why
    content_name = etree.QName(content)
    for candidate in accepted:
        if content_name.namespace == candidate.namespace:
            return candidate
    raise UnsupportedMessageType(
        f"Innholdet er {content_name.localname} i navnerommet {content_name.namespace}; denne "
        f"mottakeren tar bare imot {' eller '.join(t.described() for t in accepted)}."
    )
