"""What an ebMS 2.0 envelope says, as frozen values: the ``eb:MessageHeader`` and its parties, the
manifest, received error lists. Read by ``gateway.ebxml.envelope``, written by
``gateway.ebxml.compose``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

__all__ = [
    "EBMS_VERSION",
    "EbxmlMessage",
    "ErrorDetail",
    "ManifestReference",
    "MessageHeader",
    "Party",
    "PartyId",
    "Severity",
]

EBMS_VERSION: Final = "2.0"

Severity = Literal["Error", "Warning"]


@dataclass(frozen=True, slots=True)
class PartyId:
    """An ``eb:PartyId``, e.g. ``PartyId("79768", "HER")``."""

    value: str
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """An ``eb:From`` or ``eb:To``: one or more ids and an optional role."""

    party_ids: tuple[PartyId, ...]
    role: str | None = None

    def id_of(self, type_: str) -> str | None:
        """The first id of the given type (``"HER"``, ``"ENH"``), or ``None``."""
        for party_id in self.party_ids:
            if party_id.type == type_:
                return party_id.value
        return None


@dataclass(frozen=True, slots=True)
class ManifestReference:
    """An ``eb:Manifest/eb:Reference``; ``content_id`` is set for ``cid:`` references."""

    href: str
    content_id: str | None


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """The ``eb:MessageHeader``. Times are timezone-aware UTC."""

    from_party: Party
    to_party: Party
    cpa_id: str
    conversation_id: str
    service: str
    service_type: str | None
    action: str
    message_id: str
    timestamp: datetime
    ref_to_message_id: str | None = None
    time_to_live: datetime | None = None
    duplicate_elimination: bool = False


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One ``eb:Error`` of an ``eb:ErrorList`` (received, or to be sent)."""

    code: str
    """An ebMS 2.0 errorCode, e.g. ``"ValueNotRecognized"``."""
    severity: Severity
    location: str | None
    description: str
    lang: str = "no"


@dataclass(frozen=True, slots=True)
class EbxmlMessage:
    """What a received SOAP envelope says."""

    header: MessageHeader
    ack_requested: bool
    ack_signed: bool
    manifest: tuple[ManifestReference, ...]
    acknowledgment_ref: str | None
    """The RefToMessageId of an ``eb:Acknowledgment``, if this is one."""
    error_list: tuple[ErrorDetail, ...]
    """The errors of an ``eb:ErrorList``, if this is a MessageError."""
    has_signature: bool

