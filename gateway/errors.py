"""The project's own exceptions, and the one table that maps each to what the sender is told.

Families:

- ``ConfigurationError``: the operator's config or keys are wrong; the daemon refuses to start.
- ``StorageError``: the database failed; the message is left in the spool and retried.
- ``TransportError``: an inbox or outbox could not be reached; retried.
- ``MessageError``: something is wrong with a *received message*. Each subclass maps, in
  ``RECEIPTS`` below, either to an ebXML ``MessageError`` signal (transport-level problems, before
  the payload is trusted) or to a rejecting AppRec (problems in the MsgHead/claim document).

A rejected *bill* is not an exception: the rule engine returns findings (see ``gateway.rules``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.logs import redact


class GatewayError(Exception):
    """Root of every error raised by gateway itself."""


class ConfigurationError(GatewayError):
    """Config file, key or certificate is missing or invalid."""


class StorageError(GatewayError):
    """The claims store could not read or write."""


class TransportError(GatewayError):
    """An inbox or outbox could not be reached."""


class MessageError(GatewayError):
    """A received message cannot be accepted as it is.

    ``detail`` is a human-readable explanation in Norwegian bokmål, sent to the sender next to the
    fixed text of the code. It must never contain a national identity number.
    """

    def __init__(self, detail: str, *, location: str | None = None) -> None:
        # Whatever a stage quotes from the message, an identity number never reaches the
        # sender's OT, an ebXML error description or a log through here.
        detail = redact(detail)
        super().__init__(detail)
        self.detail = detail
        self.location = redact(location) if location is not None else None


# --- ebXML transport level: answered with an ebXML MessageError signal --------------------------


class EbxmlError(MessageError):
    """Problem in the MIME package or the ebXML envelope."""


class MimeProblem(EbxmlError):
    """The MIME multipart/related package is broken (truncated, no start part, bad charset)."""


class EnvelopeNotXml(EbxmlError):
    """The SOAP envelope part is not well-formed or not an ebXML envelope."""


class HeaderValueNotRecognized(EbxmlError):
    """A header value (CPAId, PartyId, Service, Action) is unknown to us."""


class HeaderInconsistent(EbxmlError):
    """Header values contradict each other or the payload (e.g. a Manifest points nowhere)."""


class FeatureNotSupported(EbxmlError):
    """The message uses a feature this gateway does not (yet) support."""


class SecurityFailure(EbxmlError):
    """Signature or encryption on the ebXML level failed."""


# --- Application level: answered with an AppRec of status 2 (Avvist) -----------------------------


class ContentError(MessageError):
    """Problem in the MsgHead or the claim document; answered with a rejecting AppRec."""


class NotXml(ContentError):
    """The payload is not well-formed XML, or uses DTDs/entities, or is too large."""


class SchemaInvalid(ContentError):
    """The payload is XML but fails its XSD."""


class UnsupportedMessageType(ContentError):
    """Well-formed and valid, but not a message type this gateway receives."""


class MsgIdReused(ContentError):
    """The sender's MsgId was used before for a message with other content."""


class UnknownReceiver(ContentError):
    """The MsgHead is addressed to someone other than this gateway."""


class UnknownSender(ContentError):
    """With partners configured: the MsgHead's sender has no CPA with us (or its CPA does not
    let it send this message), so nothing it sends can be authenticated or approved."""


class SignatureInvalid(ContentError):
    """The MsgHead's enveloped signature is missing, malformed, wrapped or does not verify."""


class CertificateInvalid(ContentError):
    """The sender's certificate is expired, not yet valid, of the wrong kind or not trusted."""


class CertificateRevoked(CertificateInvalid):
    """The sender's certificate is revoked (CRL or OCSP); see ``gateway.security.revocation``."""


class RevocationUnknown(CertificateInvalid):
    """Whether the sender's certificate is revoked cannot be established (no CRL, a stale CRL,
    no OCSP answer) and the configured policy is to fail closed."""


class ReplyChannel(enum.Enum):
    """How a message error is answered."""

    EBXML_MESSAGE_ERROR = "ebxml"
    APPREC = "apprec"


@dataclass(frozen=True, slots=True)
class ReceiptCode:
    """What the sender receives for an error: the channel, the code and its fixed Norwegian text.

    For ebXML the code is the ebMS 2.0 ``errorCode``; for AppRec it is a code from KITH code list
    8221 (``code_system``), sent as ``Error/@V`` with the text as ``Error/@DN``.
    """

    channel: ReplyChannel
    code: str
    text: str
    code_system: str | None = None


#: KITH code list 8221, "Feilkoder for applikasjonskvittering".
APPREC_ERROR_CODE_SYSTEM = "2.16.578.1.12.4.1.1.8221"

#: The one place where each error family gets its answer. Looked up along the MRO, so a
#: subclass without its own row inherits its parent's.
RECEIPTS: dict[type[MessageError], ReceiptCode] = {
    MimeProblem: ReceiptCode(
        ReplyChannel.EBXML_MESSAGE_ERROR, "MimeProblem", "Feil i MIME-pakken"
    ),
    EnvelopeNotXml: ReceiptCode(
        ReplyChannel.EBXML_MESSAGE_ERROR, "OtherXml", "ebXML-konvolutten kan ikke leses"
    ),
    HeaderValueNotRecognized: ReceiptCode(
        ReplyChannel.EBXML_MESSAGE_ERROR, "ValueNotRecognized", "Ukjent verdi i ebXML-hodet"
    ),
    HeaderInconsistent: ReceiptCode(
        ReplyChannel.EBXML_MESSAGE_ERROR, "Inconsistent", "Motstridende verdier i ebXML-hodet"
    ),
    FeatureNotSupported: ReceiptCode(
        ReplyChannel.EBXML_MESSAGE_ERROR, "NotSupported", "Funksjonen støttes ikke"
    ),
    SecurityFailure: ReceiptCode(
        ReplyChannel.EBXML_MESSAGE_ERROR, "SecurityFailure", "Sikkerhetskontroll feilet"
    ),
    EbxmlError: ReceiptCode(
        ReplyChannel.EBXML_MESSAGE_ERROR, "Unknown", "Ukjent feil i ebXML-meldingen"
    ),
    NotXml: ReceiptCode(
        ReplyChannel.APPREC,
        "T01",
        "Ikke XML / ikke 'well formed' / uleselig",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    SchemaInvalid: ReceiptCode(
        ReplyChannel.APPREC,
        "T02",
        "XML validerer ikke",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    UnsupportedMessageType: ReceiptCode(
        ReplyChannel.APPREC,
        "T10",
        "Støtter ikke meldingsformatet",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    MsgIdReused: ReceiptCode(
        ReplyChannel.APPREC,
        "E10",
        "Ugyldig meldingsidentifikator",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    UnknownReceiver: ReceiptCode(
        ReplyChannel.APPREC,
        "E21",
        "Mottaker finnes ikke",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    UnknownSender: ReceiptCode(
        ReplyChannel.APPREC,
        "X99",
        "Annen feil",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    SignatureInvalid: ReceiptCode(
        ReplyChannel.APPREC,
        "S01",
        "Feil på signatur",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    CertificateInvalid: ReceiptCode(
        ReplyChannel.APPREC,
        "S02",
        "Ugyldig sertifikat",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    CertificateRevoked: ReceiptCode(
        ReplyChannel.APPREC,
        "S03",
        "Tilbaketrukket sertifikat",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    RevocationUnknown: ReceiptCode(
        ReplyChannel.APPREC,
        "S99",
        "Annen feil på signatur eller sertifikat",
        APPREC_ERROR_CODE_SYSTEM,
    ),
    ContentError: ReceiptCode(
        ReplyChannel.APPREC,
        "X99",
        "Annen feil",
        APPREC_ERROR_CODE_SYSTEM,
    ),
}


def receipt_for(error: MessageError) -> ReceiptCode:
    """Return the answer for ``error``: its own row in ``RECEIPTS`` or its nearest parent's."""
    for cls in type(error).__mro__:
        if cls in RECEIPTS:
            return RECEIPTS[cls]
    raise LookupError(f"no receipt mapped for {type(error).__name__}")  # pragma: no cover
