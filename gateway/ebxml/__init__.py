"""ebMS 2.0 over SMTP: what a received file is (``unwrap``), the MIME package, the SOAP envelope
(read in ``envelope``, its values in ``model``, written by ``compose``), the payload it carries
(``payload``) and the signals (Acknowledgment, MessageError). Pure code: bytes in, values out.
"""

from gateway.ebxml.compose import build_envelope, reply_header
from gateway.ebxml.envelope import parse_envelope, peek_message_id
from gateway.ebxml.mime import MimePackage, MimePart, OutgoingPart, build, unwrap
from gateway.ebxml.model import (
    EbxmlMessage,
    ErrorDetail,
    ManifestReference,
    MessageHeader,
    Party,
    PartyId,
)
from gateway.ebxml.signals import build_acknowledgment, build_message_error, error_detail_for

__all__ = [
    "EbxmlMessage",
    "ErrorDetail",
    "ManifestReference",
    "MessageHeader",
    "MimePackage",
    "MimePart",
    "OutgoingPart",
    "Party",
    "PartyId",
    "build",
    "build_acknowledgment",
    "build_envelope",
    "build_message_error",
    "error_detail_for",
    "parse_envelope",
    "peek_message_id",
    "reply_header",
    "unwrap",
]
