"""ebMS 2.0 signals we send: Acknowledgment and MessageError.

Both are left unsigned; the signing module appends a ``ds:Signature`` as the last child of
``SOAP:Header`` (nothing is written after the signal element there).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from lxml import etree

from gateway.ebxml.compose import (
    append_party,
    append_text,
    envelope_skeleton,
    format_timestamp,
    serialize,
)
from gateway.ebxml.model import EBMS_VERSION, ErrorDetail, MessageHeader, Party, Severity
from gateway.ebxml.namespaces import ACTOR_TO_PARTY_MSH, EB_NS, EB_SERVICE_NS, SOAP_NS, XML_NS
from gateway.errors import EbxmlError, ReplyChannel, receipt_for

__all__ = [
    "ACTION_ACKNOWLEDGMENT",
    "ACTION_MESSAGE_ERROR",
    "ERROR_CODES",
    "UNKNOWN",
    "ErrorDetail",
    "Severity",
    "build_acknowledgment",
    "build_message_error",
    "error_detail_for",
    "highest_severity",
]

ACTION_ACKNOWLEDGMENT: Final = "Acknowledgment"
ACTION_MESSAGE_ERROR: Final = "MessageError"
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
) -> bytes:
    """The Acknowledgment of ``incoming``, sent by its To party (us) back to its From party.

    ``received_at`` is when we received ``incoming`` (the Acknowledgment's own Timestamp, ebMS 2.0
    §6.3.2.1); it defaults to ``timestamp``.
    """
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
    # ds:Reference copies for a signed (NRR) acknowledgment would follow eb:From.
    append_party(ack, "From", incoming.to_party)
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
