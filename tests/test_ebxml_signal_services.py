"""ebMS 2.0 signals beyond Acknowledgment and MessageError: the signed Acknowledgment's
``ds:Reference`` copies (§6.3.2), Ping/Pong (§8) and StatusRequest/StatusResponse (§7).

Every envelope is validated against the official ``msg-header-2_0.xsd`` (conformance; the
schema fixture comes from test_ebxml_signals).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from gateway.ebxml.compose import serialize
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import MessageHeader
from gateway.ebxml.namespaces import DS_NS, EB_NS, EB_SERVICE_NS, SOAP_NS
from gateway.ebxml.signals import (
    MessageStatus,
    StatusRequest,
    build_acknowledgment,
    build_ping,
    build_pong,
    build_status_request,
    build_status_response,
    is_ping,
    is_status_request,
    parse_status_request,
    signature_references,
)
from gateway.errors import EnvelopeNotXml, HeaderInconsistent
from gateway.security.signatures import sign_ebxml_envelope, verify_ebxml_envelope
from tests.support.pki import TestPki
from tests.test_ebxml_signals import WHEN, assert_valid, eb, ebms_schema, incoming, samples

__all__ = ["ebms_schema", "incoming", "samples"]  # fixtures shared with test_ebxml_signals

DS = f"{{{DS_NS}}}"
NS = {"eb": EB_NS, "SOAP": SOAP_NS, "ds": DS_NS}
SIGNED_SAMPLE = "2023_08_29T12_56_58_328.xml"


@pytest.fixture(scope="module")
def signed_envelope(samples: Path) -> bytes:
    """The real NAV-partner claim envelope: signed, AckRequested signed="true"."""
    return (samples / SIGNED_SAMPLE).read_bytes()


def c14n(element: etree._Element) -> bytes:
    """Exclusive C14N: the element as signed content, without the namespaces merely in scope."""
    return etree.tostring(element, method="c14n", exclusive=True)


# --- signed Acknowledgment: the acknowledged message's references ---------------------------------


def test_references_are_taken_from_the_ebms_signature_with_their_namespaces(
    signed_envelope: bytes,
) -> None:
    references = signature_references(signed_envelope)
    parsed = [etree.fromstring(r) for r in references]
    assert [r.get("URI") for r in parsed] == ["", "cid:3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no"]
    original = etree.fromstring(signed_envelope).findall(
        "SOAP:Header/ds:Signature/ds:SignedInfo/ds:Reference", NS
    )
    assert [c14n(r) for r in parsed] == [c14n(r) for r in original]
    # The XPath transform's SOAP-ENV prefix stays declared on the copy.
    xpath = parsed[0].find("ds:Transforms/ds:Transform/ds:XPath", NS)
    assert xpath is not None and xpath.nsmap["SOAP-ENV"] == SOAP_NS


def test_an_unsigned_message_has_no_references_and_two_signatures_are_refused(
    signed_envelope: bytes, incoming: MessageHeader
) -> None:
    unsigned = build_acknowledgment(incoming, message_id="x@gateway", timestamp=WHEN)
    assert signature_references(unsigned) == ()
    root = etree.fromstring(signed_envelope)
    header = root.find("SOAP:Header", NS)
    signature = root.find("SOAP:Header/ds:Signature", NS)
    assert header is not None and signature is not None
    header.append(etree.fromstring(etree.tostring(signature)))
    with pytest.raises(HeaderInconsistent, match="2 ds:Signature"):
        signature_references(etree.tostring(root))
    with pytest.raises(EnvelopeNotXml):
        signature_references(b"<not xml")


@pytest.mark.conformance
def test_a_signed_acknowledgment_carries_the_copies_after_from_and_validates(
    ebms_schema: etree.XMLSchema, signed_envelope: bytes, incoming: MessageHeader
) -> None:
    references = signature_references(signed_envelope)
    ack = build_acknowledgment(
        incoming, message_id="ack-1@gateway", timestamp=WHEN, references=references
    )
    assert_valid(ebms_schema, ack)
    element = eb(etree.fromstring(ack), "SOAP:Header/eb:Acknowledgment")
    names = [etree.QName(child).localname for child in element]
    assert names == ["Timestamp", "RefToMessageId", "From", "Reference", "Reference"]
    copies = element.findall("ds:Reference", NS)
    assert [c14n(c) for c in copies] == [c14n(etree.fromstring(r)) for r in references]
    # Stored references give the identical acknowledgment again (a duplicate's answer).
    again = build_acknowledgment(
        incoming, message_id="ack-1@gateway", timestamp=WHEN, references=list(references)
    )
    assert again == ack


def test_our_signature_over_an_acknowledgment_with_references_verifies(
    signed_envelope: bytes, incoming: MessageHeader
) -> None:
    pki = TestPki.create()
    ack = build_acknowledgment(
        incoming,
        message_id="ack-2@gateway",
        timestamp=WHEN,
        references=signature_references(signed_envelope),
    )
    signed = serialize(sign_ebxml_envelope(ack, pki.gateway.signer(), {}))
    verified = verify_ebxml_envelope(signed, {}, pki.gateway.certificate, datetime.now(UTC))
    assert len(verified.findall(".//eb:Acknowledgment/ds:Reference", NS)) == 2


def test_only_ds_references_are_accepted_as_copies(incoming: MessageHeader) -> None:
    with pytest.raises(ValueError, match="not a ds:Reference"):
        build_acknowledgment(
            incoming, message_id="a", timestamp=WHEN, references=[b"<Reference URI=''/>"]
        )


# --- Ping and Pong --------------------------------------------------------------------------------


def ping_header(incoming: MessageHeader) -> MessageHeader:
    """A Ping from the sample's sender to us."""
    return replace(incoming, message_id="ping-1@speare.no", timestamp=WHEN)


@pytest.mark.conformance
def test_a_ping_is_recognised_and_answered_with_a_pong(
    ebms_schema: etree.XMLSchema, incoming: MessageHeader
) -> None:
    ping = build_ping(ping_header(incoming))
    assert_valid(ebms_schema, ping)
    received = parse_envelope(ping).header
    assert is_ping(received) and not is_status_request(received)
    assert not is_ping(incoming)  # a BehandlerKrav message is not one

    pong = build_pong(received, message_id="pong-1@gateway", timestamp=WHEN)
    assert_valid(ebms_schema, pong)
    answered = parse_envelope(pong)
    header = answered.header
    assert (header.service, header.action) == (EB_SERVICE_NS, "Pong")
    assert header.ref_to_message_id == "ping-1@speare.no"
    assert header.from_party == received.to_party and header.to_party == received.from_party
    assert header.cpa_id == received.cpa_id
    assert header.conversation_id == received.conversation_id
    assert not answered.ack_requested and answered.manifest == ()
    assert len(etree.fromstring(pong).find("SOAP:Body", NS)) == 0  # type: ignore[arg-type]


# --- StatusRequest and StatusResponse -------------------------------------------------------------


def status_request(incoming: MessageHeader, asked: str = "claim-7@speare.no") -> bytes:
    header = replace(incoming, message_id="status-1@speare.no", timestamp=WHEN)
    return build_status_request(header, asked)


@pytest.mark.conformance
def test_a_status_request_is_built_validated_and_read(
    ebms_schema: etree.XMLSchema, incoming: MessageHeader
) -> None:
    data = status_request(incoming)
    assert_valid(ebms_schema, data)
    request = parse_status_request(data)
    assert request.ref_to_message_id == "claim-7@speare.no"
    assert request.header.message_id == "status-1@speare.no"
    assert is_status_request(request.header)


@pytest.mark.conformance
@pytest.mark.parametrize(
    ("status", "received"),
    [
        (MessageStatus.RECEIVED, True),
        (MessageStatus.PROCESSED, True),
        (MessageStatus.NOT_RECOGNIZED, False),
        (MessageStatus.UNAUTHORIZED, False),
    ],
)
def test_a_status_response_names_the_message_its_status_and_when_it_came(
    ebms_schema: etree.XMLSchema, incoming: MessageHeader, status: MessageStatus, received: bool
) -> None:
    request = parse_status_request(status_request(incoming))
    came = WHEN - timedelta(hours=2) if received else None
    data = build_status_response(
        request, status, received_at=came, message_id="sr-1@gateway", timestamp=WHEN
    )
    assert_valid(ebms_schema, data)
    header = parse_envelope(data).header
    assert (header.service, header.action) == (EB_SERVICE_NS, "StatusResponse")
    assert header.ref_to_message_id == "status-1@speare.no"  # answers the request
    assert header.to_party == request.header.from_party
    response = eb(etree.fromstring(data), "SOAP:Body/eb:StatusResponse")
    assert response.get(f"{{{EB_NS}}}messageStatus") == status.value
    assert response.findtext("eb:RefToMessageId", namespaces=NS) == "claim-7@speare.no"
    timestamp = response.findtext("eb:Timestamp", namespaces=NS)
    assert timestamp == ("2024-05-06T05:08:09.123Z" if received else None)


def test_the_timestamp_rule_of_a_status_response_is_enforced(incoming: MessageHeader) -> None:
    request = StatusRequest(header=incoming, ref_to_message_id="m")
    with pytest.raises(ValueError, match="needs the time"):
        build_status_response(
            request, MessageStatus.PROCESSED, received_at=None, message_id="a", timestamp=WHEN
        )
    with pytest.raises(ValueError, match="must not name"):
        build_status_response(
            request, MessageStatus.NOT_RECOGNIZED, received_at=WHEN, message_id="a", timestamp=WHEN
        )


def test_a_broken_status_request_is_refused_with_its_location(
    incoming: MessageHeader, signed_envelope: bytes
) -> None:
    with pytest.raises(HeaderInconsistent, match="ikke en StatusRequest"):
        parse_status_request(signed_envelope)
    root = etree.fromstring(status_request(incoming))
    request = root.find("SOAP:Body/eb:StatusRequest", NS)
    assert request is not None
    ref = request.find("eb:RefToMessageId", NS)
    assert ref is not None
    ref.text = "  "
    with pytest.raises(HeaderInconsistent, match="mangler RefToMessageId") as caught:
        parse_status_request(etree.tostring(root))
    assert caught.value.location == "//eb:StatusRequest/eb:RefToMessageId"
    request.getparent().remove(request)  # type: ignore[union-attr]
    with pytest.raises(HeaderInconsistent, match="0 eb:StatusRequest"):
        parse_status_request(etree.tostring(root))
