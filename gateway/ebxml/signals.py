"""ebMS 2.0 signals: Acknowledgment, MessageError, Pong and StatusResponse we send, and the
Ping and StatusRequest we answer.

- **Acknowledgment** (§6.3.2). When the acknowledged message was signed and its AckRequested
  asked for a signed acknowledgment, the Acknowledgment carries copies of that message's
  ``ds:Reference`` elements (non-repudiation of receipt): ``signature_references`` takes them
  from the received envelope (after its signature verified), as bytes to store, so that a
  duplicate gets the identical acknowledgment again.
- **MessageError** (§4.2) for transport-level problems.
- **Ping/Pong** (§8): a Ping is a message to Service ``urn:oasis:names:tc:ebxml-msg:service``,
  Action ``Ping``; the Pong answers it with Action ``Pong`` and RefToMessageId, no payload.
- **StatusRequest/StatusResponse** (§7): the request names a message by RefToMessageId in its
  Body; the response's Body says its ``messageStatus`` (``MessageStatus``) and, when we have it,
  the time we received it. ``NotRecognized`` for a message we do not have, ``UnAuthorized`` for
  a requester who did not send it.

All are left unsigned; the signing module appends a ``ds:Signature`` as the last child of
``SOAP:Header`` (nothing is written after the signal element there).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from lxml import etree

from gateway.ebxml.compose import (
    append_party,
    append_text,
    envelope_skeleton,
    format_timestamp,
    reply_header,
    serialize,
)
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import EBMS_VERSION, ErrorDetail, MessageHeader, Party, Severity
from gateway.ebxml.namespaces import (
    ACTOR_TO_PARTY_MSH,
    DS_NS,
    EB_NS,
    EB_SERVICE_NS,
    SOAP_NS,
    XML_NS,
)
from gateway.errors import (
    EbxmlError,
    EnvelopeNotXml,
    HeaderInconsistent,
    NotXml,
    ReplyChannel,
    receipt_for,
)
from gateway.validation.safe_xml import parse_xml

__all__ = [
    "ACTION_ACKNOWLEDGMENT",
    "ACTION_MESSAGE_ERROR",
    "ACTION_PING",
    "ACTION_PONG",
    "ACTION_STATUS_REQUEST",
    "ACTION_STATUS_RESPONSE",
    "ERROR_CODES",
    "UNKNOWN",
    "ErrorDetail",
    "MessageStatus",
    "Severity",
    "StatusRequest",
    "build_acknowledgment",
    "build_message_error",
    "build_ping",
    "build_pong",
    "build_status_request",
    "build_status_response",
    "error_detail_for",
    "highest_severity",
    "is_ping",
    "is_status_request",
    "parse_status_request",
    "signature_references",
]

ACTION_ACKNOWLEDGMENT: Final = "Acknowledgment"
ACTION_MESSAGE_ERROR: Final = "MessageError"
ACTION_PING: Final = "Ping"
ACTION_PONG: Final = "Pong"
ACTION_STATUS_REQUEST: Final = "StatusRequest"
ACTION_STATUS_RESPONSE: Final = "StatusResponse"
#: Stands in for header values of a message whose header could not be read.
UNKNOWN: Final = "unknown"
#: The errorCode values of ebMS 2.0 (codeContext ``EB_ERRORS_CODE_CONTEXT``).
ERROR_CODES: Final = frozenset(
    {
        "ValueNotRecognized",
        "NotSupported",
        "Inconsistent",
        "OtherXml",
        "DeliveryFailure",
        "TimeToLiveExpired",
        "SecurityFailure",
        "MimeProblem",
        "Unknown",
    }
)


def error_detail_for(error: EbxmlError, *, severity: Severity = "Error") -> ErrorDetail:
    """The ``eb:Error`` for a transport-level exception: its code, fixed text plus detail, XPath."""
    receipt = receipt_for(error)
    if receipt.channel is not ReplyChannel.EBXML_MESSAGE_ERROR:  # pragma: no cover - mapping bug
        raise ValueError(f"{type(error).__name__} is not answered with an ebXML MessageError")
    return ErrorDetail(
        code=receipt.code,
        severity=severity,
        location=error.location,
        description=f"{receipt.text}: {error.detail}",
    )


def highest_severity(errors: Sequence[ErrorDetail]) -> Severity:
    """``Error`` if any error is one, else ``Warning``."""
    return "Error" if any(e.severity == "Error" for e in errors) else "Warning"


def build_acknowledgment(
    incoming: MessageHeader,
    *,
    message_id: str,
    timestamp: datetime,
    received_at: datetime | None = None,
    references: Sequence[bytes] = (),
) -> bytes:
    """The Acknowledgment of ``incoming``, sent by its To party (us) back to its From party.

    ``received_at`` is when we received ``incoming`` (the Acknowledgment's own Timestamp, ebMS 2.0
    §6.3.2.1); it defaults to ``timestamp``. ``references`` are the ``ds:Reference`` copies of a
    signed ``incoming`` (``signature_references``), for a signed acknowledgment (§6.3.2.5).
    """
    copies = [_reference(data) for data in references]
    header = MessageHeader(
        from_party=incoming.to_party,
        to_party=incoming.from_party,
        cpa_id=incoming.cpa_id,
        conversation_id=incoming.conversation_id,
        service=EB_SERVICE_NS,
        service_type=None,
        action=ACTION_ACKNOWLEDGMENT,
        message_id=message_id,
        timestamp=timestamp,
        ref_to_message_id=incoming.message_id,
    )
    root, soap_header, _ = envelope_skeleton(header)
    ack = etree.SubElement(soap_header, _eb("Acknowledgment"))
    ack.set(_soap("mustUnderstand"), "1")
    ack.set(_eb("version"), EBMS_VERSION)
    ack.set(_soap("actor"), ACTOR_TO_PARTY_MSH)
    append_text(ack, "Timestamp", format_timestamp(received_at or timestamp))
    append_text(ack, "RefToMessageId", incoming.message_id)
    append_party(ack, "From", incoming.to_party)
    ack.extend(copies)  # after eb:From, as the schema orders them
    return serialize(root)


def build_message_error(
    incoming: MessageHeader | None,
    errors: Sequence[ErrorDetail],
    *,
    message_id: str,
    timestamp: datetime,
    our_party: Party,
    their_party: Party | None,
    cpa_id_fallback: str = UNKNOWN,
    ref_to_message_id: str | None = None,
) -> bytes:
    """A MessageError signal reporting ``errors`` about ``incoming``.

    With ``incoming`` None (its header could not be read) the CPAId is ``cpa_id_fallback``, the
    ConversationId ``"unknown"``, and RefToMessageId is ``ref_to_message_id`` or left out (the
    schema makes it optional; ``envelope.peek_message_id`` may recover it). The To party is
    ``their_party``, else the From of ``incoming``; without either, raise ``ValueError`` (pass
    e.g. ``Party((PartyId("mailto:sender@example.no"),))``).
    """
    if not errors:
        raise ValueError("a MessageError needs at least one error")
    for error in errors:
        if error.code not in ERROR_CODES:
            raise ValueError(f"unknown ebMS errorCode {error.code!r}")
        if error.severity not in ("Error", "Warning"):
            raise ValueError(f"unknown severity {error.severity!r}")
    to_party = their_party or (incoming.from_party if incoming is not None else None)
    if to_party is None:
        raise ValueError("cannot address a MessageError without their_party or incoming")
    header = MessageHeader(
        from_party=our_party,
        to_party=to_party,
        cpa_id=incoming.cpa_id if incoming is not None else cpa_id_fallback,
        conversation_id=incoming.conversation_id if incoming is not None else UNKNOWN,
        service=EB_SERVICE_NS,
        service_type=None,
        action=ACTION_MESSAGE_ERROR,
        message_id=message_id,
        timestamp=timestamp,
        ref_to_message_id=incoming.message_id if incoming is not None else ref_to_message_id,
    )
    root, soap_header, _ = envelope_skeleton(header)
    error_list = etree.SubElement(soap_header, _eb("ErrorList"))
    error_list.set(_soap("mustUnderstand"), "1")
    error_list.set(_eb("version"), EBMS_VERSION)
    error_list.set(_eb("highestSeverity"), highest_severity(errors))
    for error in errors:
        element = etree.SubElement(error_list, _eb("Error"))
        element.set(_eb("errorCode"), error.code)
        element.set(_eb("severity"), error.severity)
        if error.location:
            element.set(_eb("location"), error.location)
        if error.description.strip():
            description = append_text(element, "Description", error.description)
            description.set(f"{{{XML_NS}}}lang", error.lang)
    return serialize(root)


def _eb(local: str) -> str:
    return f"{{{EB_NS}}}{local}"


def _soap(local: str) -> str:
    return f"{{{SOAP_NS}}}{local}"


# --- signed acknowledgments: the acknowledged message's references -------------------------


def signature_references(envelope_xml: bytes) -> tuple[bytes, ...]:
    """The ``ds:Reference`` elements of the ebMS signature in ``envelope_xml``'s SOAP:Header,
    each serialized with the namespaces in scope (an XPath transform's prefixes keep working).

    Empty when the message is unsigned. Take them only from a message whose signature verified.
    Raises ``EnvelopeNotXml`` if the envelope cannot be read and ``HeaderInconsistent`` if the
    header holds more than one signature (which one was acknowledged would be ambiguous).
    """
    try:
        root = parse_xml(bytes(envelope_xml))
    except NotXml as exc:
        raise EnvelopeNotXml(f"SOAP-konvolutten kan ikke leses: {exc.detail}") from exc
    soap_header = root.find(_soap("Header"))
    signatures = [] if soap_header is None else soap_header.findall(_ds("Signature"))
    if len(signatures) > 1:
        raise HeaderInconsistent(
            f"SOAP:Header har {len(signatures)} ds:Signature; én er forventet.",
            location="/SOAP:Envelope/SOAP:Header/ds:Signature",
        )
    if not signatures:
        return ()
    found = signatures[0].findall(f"{_ds('SignedInfo')}/{_ds('Reference')}")
    return tuple(etree.tostring(reference) for reference in found)


def _reference(data: bytes) -> etree._Element:
    element = parse_xml(data)
    if element.tag != _ds("Reference"):
        raise ValueError(f"not a ds:Reference: {element.tag!r}")
    return copy.deepcopy(element)


# --- Ping and Pong (ebMS 2.0 §8) ------------------------------------------------------------


def is_ping(header: MessageHeader) -> bool:
    """Whether ``header`` is an ebMS Ping (the MSH service, Action ``Ping``)."""
    return header.service == EB_SERVICE_NS and header.action == ACTION_PING


def build_ping(header: MessageHeader) -> bytes:
    """A Ping with ``header`` (its Service and Action are set here), e.g. to test a partner."""
    return serialize(envelope_skeleton(_service_header(header, ACTION_PING))[0])


def build_pong(ping: MessageHeader, *, message_id: str, timestamp: datetime) -> bytes:
    """The Pong answering ``ping``: From/To swapped, RefToMessageId = its MessageId, no payload
    and no AckRequested (§8.2)."""
    header = reply_header(
        ping,
        action=ACTION_PONG,
        service=EB_SERVICE_NS,
        service_type=None,
        message_id=message_id,
        timestamp=timestamp,
    )
    return serialize(envelope_skeleton(header)[0])


# --- StatusRequest and StatusResponse (ebMS 2.0 §7) -----------------------------------------


class MessageStatus(enum.Enum):
    """``messageStatus`` of a StatusResponse."""

    UNAUTHORIZED = "UnAuthorized"  # the requester may not ask about that message
    NOT_RECOGNIZED = "NotRecognized"  # we have no such message (or no longer)
    RECEIVED = "Received"  # received, not yet answered
    PROCESSED = "Processed"  # received and answered
    FORWARDED = "Forwarded"  # passed on to another MSH (gateway has no intermediaries)

    @property
    def has_timestamp(self) -> bool:
        """Whether the response names when the message was received (§7.2.2)."""
        return self not in (MessageStatus.UNAUTHORIZED, MessageStatus.NOT_RECOGNIZED)


@dataclasses.dataclass(frozen=True, slots=True)
class StatusRequest:
    """A received StatusRequest: its header, and the MessageId it asks about."""

    header: MessageHeader
    ref_to_message_id: str


def is_status_request(header: MessageHeader) -> bool:
    """Whether ``header`` is an ebMS StatusRequest."""
    return header.service == EB_SERVICE_NS and header.action == ACTION_STATUS_REQUEST


def parse_status_request(envelope_xml: bytes) -> StatusRequest:
    """Read a StatusRequest; raise an ``EbxmlError`` (with the XPath) for what is wrong with it.

    The header is read by ``parse_envelope``; then the Body must hold exactly one
    ``eb:StatusRequest`` with a non-empty ``eb:RefToMessageId``.
    """
    header = parse_envelope(envelope_xml).header
    if not is_status_request(header):
        raise HeaderInconsistent(
            f"Meldingen er ikke en StatusRequest (Service {header.service}, "
            f"Action {header.action}).",
            location="//eb:MessageHeader/eb:Action",
        )
    root = parse_xml(bytes(envelope_xml))  # read fine by parse_envelope just now
    requests = root.findall(f"{_soap('Body')}/{_eb('StatusRequest')}")
    if len(requests) != 1:
        raise HeaderInconsistent(
            f"SOAP:Body har {len(requests)} eb:StatusRequest; én er forventet.",
            location="/SOAP:Envelope/SOAP:Body/eb:StatusRequest",
        )
    asked = (requests[0].findtext(_eb("RefToMessageId")) or "").strip()
    if not asked:
        raise HeaderInconsistent(
            "eb:StatusRequest mangler RefToMessageId.",
            location="//eb:StatusRequest/eb:RefToMessageId",
        )
    return StatusRequest(header=header, ref_to_message_id=asked)


def build_status_request(header: MessageHeader, ref_to_message_id: str) -> bytes:
    """A StatusRequest asking about ``ref_to_message_id`` (Service and Action set here)."""
    root, _, body = envelope_skeleton(_service_header(header, ACTION_STATUS_REQUEST))
    request = etree.SubElement(body, _eb("StatusRequest"))
    request.set(_eb("version"), EBMS_VERSION)
    append_text(request, "RefToMessageId", ref_to_message_id)
    return serialize(root)


def build_status_response(
    request: StatusRequest,
    status: MessageStatus,
    *,
    received_at: datetime | None,
    message_id: str,
    timestamp: datetime,
) -> bytes:
    """The StatusResponse to ``request``: From/To swapped, RefToMessageId in its header = the
    request's MessageId; in the Body, the asked-about MessageId, ``status`` and, for a message
    we have (Received, Processed, Forwarded), ``received_at``, when we received it (§7.2.2).
    """
    if status.has_timestamp and received_at is None:
        raise ValueError(f"a StatusResponse {status.value} needs the time the message came")
    if not status.has_timestamp and received_at is not None:
        raise ValueError(f"a StatusResponse {status.value} must not name a receipt time")
    header = reply_header(
        request.header,
        action=ACTION_STATUS_RESPONSE,
        service=EB_SERVICE_NS,
        service_type=None,
        message_id=message_id,
        timestamp=timestamp,
    )
    root, _, body = envelope_skeleton(header)
    response = etree.SubElement(body, _eb("StatusResponse"))
    response.set(_eb("version"), EBMS_VERSION)
    response.set(_eb("messageStatus"), status.value)
    append_text(response, "RefToMessageId", request.ref_to_message_id)
    if received_at is not None:
        append_text(response, "Timestamp", format_timestamp(received_at))
    return serialize(root)


def _service_header(header: MessageHeader, action: str) -> MessageHeader:
    return dataclasses.replace(header, service=EB_SERVICE_NS, service_type=None, action=action)


def _ds(local: str) -> str:
    return f"{{{DS_NS}}}{local}"
