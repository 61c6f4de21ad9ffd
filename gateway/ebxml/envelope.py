"""Read the ebMS 2.0 SOAP envelope a sender put in the SOAP part (the ``eb:MessageHeader`` and
friends).

Signatures are not checked here: the parsed value only says whether a ``ds:Signature`` is
present. The values it returns are ``gateway.ebxml.model``'s; our own envelopes are written by
``gateway.ebxml.compose``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import unquote

from lxml import etree

from gateway.ebxml.model import (
    EBMS_VERSION,
    EbxmlMessage,
    ErrorDetail,
    ManifestReference,
    MessageHeader,
    Party,
    PartyId,
)
from gateway.ebxml.namespaces import (
    ACTOR_NEXT_MSH,
    ACTOR_TO_PARTY_MSH,
    DS_NS,
    EB_NS,
    SOAP_ACTOR_NEXT,
    SOAP_NS,
    XLINK_NS,
    XML_NS,
)
from gateway.errors import (
    EbxmlError,
    EnvelopeNotXml,
    FeatureNotSupported,
    HeaderInconsistent,
    HeaderValueNotRecognized,
    NotXml,
)
from gateway.validation.safe_xml import parse_xml

__all__ = ["parse_envelope", "peek_message_id"]

_MH = "//eb:MessageHeader"
#: Header blocks we act on; any other with mustUnderstand="1" is refused (SOAP 1.1 §4.2.3).
_UNDERSTOOD: Final = frozenset(
    {
        f"{{{EB_NS}}}MessageHeader",
        f"{{{EB_NS}}}AckRequested",
        f"{{{EB_NS}}}Acknowledgment",
        f"{{{EB_NS}}}ErrorList",
        # Synchronous replies make no sense over SMTP; the CPA says syncReplyMode="none".
        f"{{{EB_NS}}}SyncReply",
        f"{{{DS_NS}}}Signature",
    }
)
#: Actors that address us: we are both the next and the To party's MSH (no intermediaries).
_OUR_ACTORS: Final = frozenset({None, ACTOR_TO_PARTY_MSH, ACTOR_NEXT_MSH, SOAP_ACTOR_NEXT})
_DATETIME: Final = re.compile(
    r"(?P<year>-?\d{4,})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)


def parse_envelope(envelope_xml: bytes) -> EbxmlMessage:
    """Read a received SOAP envelope; raise an ``EbxmlError`` subclass for what is wrong with it.

    ``EnvelopeNotXml``: not well-formed, has a DOCTYPE, not a SOAP 1.1 envelope, no MessageHeader.
    ``HeaderInconsistent``: a required element is missing, empty or repeated.
    ``HeaderValueNotRecognized``: a value cannot be read (dateTime, boolean, severity).
    ``FeatureNotSupported``: another ebMS version, or a mustUnderstand header block we do not know.
    Each carries the XPath of the offending element as ``location``.
    """
    root = _parse_xml(envelope_xml)
    if root.tag != _soap("Envelope"):
        raise EnvelopeNotXml("Rotelementet er ikke SOAP:Envelope (SOAP 1.1).")
    soap_header = _only(root, _soap("Header"), "/SOAP:Envelope/SOAP:Header", EnvelopeNotXml)
    if soap_header is None:
        raise EnvelopeNotXml("SOAP:Header mangler; det er ikke en ebXML-melding.")
    message_header = _only(soap_header, _eb("MessageHeader"), _MH, EnvelopeNotXml)
    if message_header is None:
        raise EnvelopeNotXml("eb:MessageHeader mangler; det er ikke en ebXML-melding.")

    _check_version(message_header, _MH, required=True)
    _check_must_understand(soap_header)
    header = _message_header(message_header)

    ack_requests = [
        el for el in soap_header.findall(_eb("AckRequested")) if _actor(el) in _OUR_ACTORS
    ]
    for el in ack_requests:
        _check_version(el, "//eb:AckRequested", required=False)
    ack_signed = any(
        _boolean(el, "signed", "//eb:AckRequested/@eb:signed", default=False) for el in ack_requests
    )

    acknowledgment = _only(soap_header, _eb("Acknowledgment"), "//eb:Acknowledgment")
    acknowledgment_ref = None
    if acknowledgment is not None:
        _check_version(acknowledgment, "//eb:Acknowledgment", required=False)
        acknowledgment_ref = _required_text(
            acknowledgment, "RefToMessageId", "//eb:Acknowledgment/eb:RefToMessageId"
        )

    error_list_el = _only(soap_header, _eb("ErrorList"), "//eb:ErrorList")
    errors = _error_list(error_list_el) if error_list_el is not None else ()

    body = _only(root, _soap("Body"), "/SOAP:Envelope/SOAP:Body")
    manifest_el = None if body is None else _only(body, _eb("Manifest"), "//eb:Manifest")
    manifest = _manifest(manifest_el) if manifest_el is not None else ()

    return EbxmlMessage(
        header=header,
        ack_requested=bool(ack_requests),
        ack_signed=ack_signed,
        manifest=manifest,
        acknowledgment_ref=acknowledgment_ref,
        error_list=errors,
        has_signature=soap_header.find(f"{{{DS_NS}}}Signature") is not None,
    )


def peek_message_id(envelope_xml: bytes) -> str | None:
    """Best effort: the MessageId of an envelope ``parse_envelope`` rejected, for RefToMessageId."""
    try:
        root = _parse_xml(envelope_xml)
    except EbxmlError:
        return None
    for element in root.iterfind(f".//{_eb('MessageData')}/{_eb('MessageId')}"):
        text = (element.text or "").strip()
        if text:
            return text
    return None


def _parse_xml(data: bytes) -> etree._Element:
    """The shared hardened parse (no DTDs, entities or network), as an ebXML-level error."""
    try:
        root = parse_xml(bytes(data))
    except NotXml as exc:
        raise EnvelopeNotXml(f"SOAP-konvolutten kan ikke leses: {exc.detail}") from exc
    # Comments and PIs would split element text; header values are read from .text.
    etree.strip_tags(root, etree.Comment, etree.ProcessingInstruction)
    return root


def _message_header(mh: etree._Element) -> MessageHeader:
    service_el = _only(mh, _eb("Service"), f"{_MH}/eb:Service")
    service = _required_text(mh, "Service", f"{_MH}/eb:Service")
    message_data = _only(mh, _eb("MessageData"), f"{_MH}/eb:MessageData")
    if message_data is None:
        raise HeaderInconsistent("eb:MessageData mangler.", location=f"{_MH}/eb:MessageData")
    data_path = f"{_MH}/eb:MessageData"
    timestamp_text = _required_text(message_data, "Timestamp", f"{data_path}/eb:Timestamp")
    ttl_text = _optional_text(message_data, "TimeToLive", f"{data_path}/eb:TimeToLive")
    return MessageHeader(
        from_party=_party(mh, "From"),
        to_party=_party(mh, "To"),
        cpa_id=_required_text(mh, "CPAId", f"{_MH}/eb:CPAId"),
        conversation_id=_required_text(mh, "ConversationId", f"{_MH}/eb:ConversationId"),
        service=service,
        service_type=_attribute(service_el, "type") if service_el is not None else None,
        action=_required_text(mh, "Action", f"{_MH}/eb:Action"),
        message_id=_required_text(message_data, "MessageId", f"{data_path}/eb:MessageId"),
        timestamp=_datetime(timestamp_text, f"{data_path}/eb:Timestamp"),
        ref_to_message_id=_optional_text(
            message_data, "RefToMessageId", f"{data_path}/eb:RefToMessageId"
        ),
        time_to_live=(
            _datetime(ttl_text, f"{data_path}/eb:TimeToLive") if ttl_text is not None else None
        ),
        duplicate_elimination=(
            _only(mh, _eb("DuplicateElimination"), f"{_MH}/eb:DuplicateElimination") is not None
        ),
    )


def _party(mh: etree._Element, local: str) -> Party:
    path = f"{_MH}/eb:{local}"
    element = _only(mh, _eb(local), path)
    if element is None:
        raise HeaderInconsistent(f"eb:{local} mangler.", location=path)
    party_ids: list[PartyId] = []
    for id_element in element.findall(_eb("PartyId")):
        value = (id_element.text or "").strip()
        if not value:
            raise HeaderInconsistent(
                f"eb:PartyId i eb:{local} er tom.", location=f"{path}/eb:PartyId"
            )
        party_ids.append(PartyId(value, _attribute(id_element, "type")))
    if not party_ids:
        raise HeaderInconsistent(f"eb:{local} mangler eb:PartyId.", location=f"{path}/eb:PartyId")
    return Party(tuple(party_ids), _optional_text(element, "Role", f"{path}/eb:Role"))


def _error_list(element: etree._Element) -> tuple[ErrorDetail, ...]:
    _check_version(element, "//eb:ErrorList", required=False)
    path = "//eb:ErrorList/eb:Error"
    errors: list[ErrorDetail] = []
    for error in element.findall(_eb("Error")):
        code = _attribute(error, "errorCode")
        if not code:
            raise HeaderInconsistent(
                "eb:Error mangler eb:errorCode.", location=f"{path}/@eb:errorCode"
            )
        severity = _attribute(error, "severity")
        if severity not in ("Error", "Warning"):
            raise HeaderValueNotRecognized(
                f"eb:severity må være Error eller Warning, ikke {_shown(severity)}.",
                location=f"{path}/@eb:severity",
            )
        description_el = _only(error, _eb("Description"), f"{path}/eb:Description")
        description = ""
        lang = "no"
        if description_el is not None:
            description = (description_el.text or "").strip()
            lang = (description_el.get(f"{{{XML_NS}}}lang") or lang).strip()
        errors.append(
            ErrorDetail(
                code=code,
                severity="Error" if severity == "Error" else "Warning",
                location=_attribute(error, "location"),
                description=description,
                lang=lang,
            )
        )
    if not errors:
        raise HeaderInconsistent("eb:ErrorList inneholder ingen eb:Error.", location=path)
    return tuple(errors)


def _manifest(element: etree._Element) -> tuple[ManifestReference, ...]:
    _check_version(element, "//eb:Manifest", required=False)
    path = "//eb:Manifest/eb:Reference"
    references: list[ManifestReference] = []
    for reference in element.findall(_eb("Reference")):
        href = (reference.get(f"{{{XLINK_NS}}}href") or "").strip()
        if not href:
            raise HeaderInconsistent(
                "eb:Reference mangler xlink:href.", location=f"{path}/@xlink:href"
            )
        content_id = None
        if href[:4].lower() == "cid:":
            # RFC 2392: a cid: URL is the %-encoded Content-ID.
            content_id = unquote(href[4:]).strip() or None
        references.append(ManifestReference(href, content_id))
    if not references:
        raise HeaderInconsistent("eb:Manifest inneholder ingen eb:Reference.", location=path)
    return tuple(references)


def _check_must_understand(soap_header: etree._Element) -> None:
    """Refuse header blocks addressed to us with mustUnderstand="1" that we do not know."""
    for child in soap_header:
        flag = child.get(f"{{{SOAP_NS}}}mustUnderstand")
        if flag is None or _actor(child) not in _OUR_ACTORS:
            continue
        path = _path_of(child)
        value = flag.strip()
        if value not in ("0", "1", "true", "false"):
            raise HeaderValueNotRecognized(
                f"SOAP:mustUnderstand må være 0 eller 1, ikke {_shown(value)}.",
                location=f"{path}/@SOAP:mustUnderstand",
            )
        if value in ("1", "true") and child.tag not in _UNDERSTOOD:
            raise FeatureNotSupported(
                f"Hodeelementet {_shown(_name_of(child))} er merket mustUnderstand, men støttes "
                "ikke.",
                location=path,
            )


def _check_version(element: etree._Element, path: str, *, required: bool) -> None:
    version = _attribute(element, "version")
    if version is None:
        if required:
            raise HeaderInconsistent("eb:version mangler.", location=f"{path}/@eb:version")
        return
    if version != EBMS_VERSION:
        raise FeatureNotSupported(
            f"ebMS-versjon {_shown(version)} støttes ikke; bare {EBMS_VERSION}.",
            location=f"{path}/@eb:version",
        )


def _only(
    parent: etree._Element,
    tag: str,
    path: str,
    error: type[EbxmlError] = HeaderInconsistent,
) -> etree._Element | None:
    """The single child with this tag, ``None`` if absent; repeated is an error."""
    found = parent.findall(tag)
    if len(found) > 1:
        raise error(f"{_shown(_short(tag))} forekommer flere ganger.", location=path)
    return found[0] if found else None


def _required_text(parent: etree._Element, local: str, path: str) -> str:
    value = _optional_text(parent, local, path)
    if value is None:
        raise HeaderInconsistent(f"eb:{local} mangler eller er tom.", location=path)
    return value


def _optional_text(parent: etree._Element, local: str, path: str) -> str | None:
    element = _only(parent, _eb(local), path)
    if element is None:
        return None
    return (element.text or "").strip() or None


def _attribute(element: etree._Element, local: str) -> str | None:
    """An ``eb:`` attribute; unqualified accepted too, as some senders forget the prefix."""
    value = element.get(_eb(local))
    if value is None:
        value = element.get(local)
    if value is None:
        return None
    return value.strip() or None


def _boolean(element: etree._Element, local: str, path: str, *, default: bool) -> bool:
    value = _attribute(element, local)
    if value is None:
        return default
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise HeaderValueNotRecognized(
        f"{_shown(value)} er ikke en gyldig boolsk verdi (true/false).", location=path
    )


def _actor(element: etree._Element) -> str | None:
    actor = element.get(f"{{{SOAP_NS}}}actor")
    return actor.strip() if actor is not None else None


def _datetime(text: str, path: str) -> datetime:
    """An xs:dateTime as aware UTC; fractions beyond microseconds are cut, no zone means UTC."""
    match = _DATETIME.fullmatch(text)
    problem = HeaderValueNotRecognized(
        f"{_shown(text)} er ikke et gyldig tidspunkt (xs:dateTime).", location=path
    )
    if match is None:
        raise problem
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    hour = int(match["hour"])
    midnight_24 = hour == 24
    if midnight_24 and (int(match["minute"]), int(match["second"]), int(fraction)) != (0, 0, 0):
        raise problem
    zone = match["tz"]
    try:
        offset = timedelta(0)
        if zone and zone != "Z":
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 14 or minutes > 59:
                raise problem
            offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
        value = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            0 if midnight_24 else hour,
            int(match["minute"]),
            int(match["second"]),
            int(fraction),
            tzinfo=UTC,
        )
        value = value - offset + (timedelta(days=1) if midnight_24 else timedelta(0))
    except (ValueError, OverflowError) as exc:
        raise problem from exc
    return value


def _path_of(element: etree._Element) -> str:
    return f"/SOAP:Envelope/SOAP:Header/{_name_of(element)}"


def _name_of(element: etree._Element) -> str:
    qname = etree.QName(element)
    prefixes = {EB_NS: "eb", DS_NS: "ds", SOAP_NS: "SOAP"}
    prefix = prefixes.get(qname.namespace or "")
    if prefix is not None:
        return f"{prefix}:{qname.localname}"
    return f"*[local-name()='{qname.localname}']"


def _short(tag: str) -> str:
    namespace, _, local = tag[1:].partition("}")
    prefix = {EB_NS: "eb", SOAP_NS: "SOAP"}.get(namespace, "")
    return f"{prefix}:{local}" if prefix else local


def _shown(value: str | None, limit: int = 80) -> str:
    """A sender-supplied value made safe to quote in an error text."""
    if value is None:
        return "(ingen)"
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _eb(local: str) -> str:
    return f"{{{EB_NS}}}{local}"


def _soap(local: str) -> str:
    return f"{{{SOAP_NS}}}{local}"
