"""Unit tests for gateway.ebxml.envelope: reading received SOAP envelopes and writing our own.

Schema conformance of what we build is tested in test_ebxml_signals.py, next to the schema fixture.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from gateway.ebxml.compose import build_envelope, format_timestamp, reply_header
from gateway.ebxml.envelope import parse_envelope, peek_message_id
from gateway.ebxml.mime import unwrap
from gateway.ebxml.model import EbxmlMessage, ManifestReference, MessageHeader, Party, PartyId
from gateway.ebxml.namespaces import ACTOR_TO_PARTY_MSH, DS_NS, EB_NS, SOAP_NS
from gateway.errors import (
    EbxmlError,
    EnvelopeNotXml,
    FeatureNotSupported,
    HeaderInconsistent,
    HeaderValueNotRecognized,
)

NS = {"SOAP": SOAP_NS, "eb": EB_NS, "ds": DS_NS}
MH = "//eb:MessageHeader"
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


@pytest.fixture(scope="module")
def samples(standards: Path) -> Path:
    return standards / "ebxml-ebms2" / "samples"


@pytest.fixture(scope="module")
def sample_xml(samples: Path) -> bytes:
    return (samples / "2023_08_29T12_56_58_328.xml").read_bytes()


def edited(xml: bytes, xpath: str, action: str, value: str = "") -> bytes:
    """The envelope with the nodes at ``xpath`` removed, emptied or given new text."""
    root = etree.fromstring(xml)
    nodes = root.xpath(xpath, namespaces=NS)
    assert isinstance(nodes, list) and nodes, xpath
    for node in nodes:
        assert isinstance(node, etree._Element)
        if action == "remove":
            parent = node.getparent()
            assert parent is not None
            parent.remove(node)
        elif action == "text":
            node.text = value
        elif action == "duplicate":
            node.addnext(etree.fromstring(etree.tostring(node)))
    return etree.tostring(root)


def set_attribute(xml: bytes, xpath: str, name: str, value: str | None) -> bytes:
    root = etree.fromstring(xml)
    for node in root.xpath(xpath, namespaces=NS):  # type: ignore[union-attr]
        assert isinstance(node, etree._Element)
        if value is None:
            del node.attrib[name]
        else:
            node.set(name, value)
    return etree.tostring(root)


def header(**changes: object) -> MessageHeader:
    values: dict[str, object] = {
        "from_party": Party((PartyId("79768", "HER"),), "KontrollUtbetaler"),
        "to_party": Party((PartyId("8141253", "HER"), PartyId("993954896", "ENH")), "Behandler"),
        "cpa_id": "nav:qass:35065",
        "conversation_id": "be192d3a-34b5-448a-a374-5eab0524c74d",
        "service": "BehandlerKrav",
        "service_type": "string",
        "action": "Svarmelding",
        "message_id": "reply-1@gw.example",
        "timestamp": WHEN,
        "ref_to_message_id": "7104acf8-21e9-4ee7-b894-d413a00a8881",
    }
    values.update(changes)
    return MessageHeader(**values)  # type: ignore[arg-type]


# --- the real samples ------------------------------------------------------------------------


def test_real_sample_from_the_mime_message(samples: Path) -> None:
    package = unwrap((samples / "2023_08_29T12_56_58_328.msg").read_bytes())

    message = parse_envelope(package.envelope.body)

    h = message.header
    assert h.from_party == Party((PartyId("8141253", "HER"),), "Behandler")
    assert h.from_party.id_of("HER") == "8141253"
    assert h.to_party.id_of("HER") == "79768"
    assert h.to_party.role == "KontrollUtbetaler"
    assert h.cpa_id == "nav:qass:35065"
    assert h.conversation_id == "be192d3a-34b5-448a-a374-5eab0524c74d"
    assert (h.service, h.service_type, h.action) == ("BehandlerKrav", "string", "OppgjorsMelding")
    assert h.message_id == "7104acf8-21e9-4ee7-b894-d413a00a8881"
    assert h.timestamp == datetime(2023, 8, 29, 10, 56, 50, 306947, tzinfo=UTC)
    assert h.ref_to_message_id is None
    assert h.time_to_live is None
    assert h.duplicate_elimination is False
    assert message.ack_requested and message.ack_signed
    assert message.manifest == (
        ManifestReference(
            "cid:3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no", "3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no"
        ),
    )
    assert package.part(message.manifest[0].href) is package.attachments[0]
    assert message.has_signature
    assert message.acknowledgment_ref is None
    assert message.error_list == ()


def test_message_error_sample(samples: Path) -> None:
    message = parse_envelope((samples / "messageerror.xml").read_bytes())

    assert message.header.action == "MessageError"
    assert message.header.ref_to_message_id == "autotest_tc_2_2_15"
    assert len(message.error_list) == 1
    error = message.error_list[0]
    assert (error.code, error.severity, error.lang) == ("ValueNotRecognized", "Error", "en")
    assert error.location == "xpointer(//MessageHeader/CpaId)"
    assert error.description.startswith("Message [autotest_tc_2_2_15]")
    assert not message.ack_requested
    assert message.manifest == ()


def test_acknowledgment_sample(samples: Path) -> None:
    message = parse_envelope((samples / "acknowledgment.xml").read_bytes())

    assert message.acknowledgment_ref == "20250124-114229-35564@qa.ebxml.nav.no"
    assert message.header.to_party.id_of("ENH") == "889640782"
    assert message.header.to_party.id_of("ORG") is None
    assert message.has_signature


def test_payload_message_sample(samples: Path) -> None:
    message = parse_envelope((samples / "payloadmessage.xml").read_bytes())

    assert message.manifest[0].content_id == "ref1"
    assert message.header.action == "OppgjorsMelding"


# --- missing and broken header values --------------------------------------------------------


@pytest.mark.parametrize(
    ("xpath", "location"),
    [
        (f"{MH}/eb:From/eb:PartyId", f"{MH}/eb:From/eb:PartyId"),
        (f"{MH}/eb:To/eb:PartyId", f"{MH}/eb:To/eb:PartyId"),
        (f"{MH}/eb:From", f"{MH}/eb:From"),
        (f"{MH}/eb:CPAId", f"{MH}/eb:CPAId"),
        (f"{MH}/eb:ConversationId", f"{MH}/eb:ConversationId"),
        (f"{MH}/eb:Service", f"{MH}/eb:Service"),
        (f"{MH}/eb:Action", f"{MH}/eb:Action"),
        (f"{MH}/eb:MessageData", f"{MH}/eb:MessageData"),
        (f"{MH}/eb:MessageData/eb:MessageId", f"{MH}/eb:MessageData/eb:MessageId"),
        (f"{MH}/eb:MessageData/eb:Timestamp", f"{MH}/eb:MessageData/eb:Timestamp"),
    ],
)
def test_missing_required_value_names_its_location(
    sample_xml: bytes, xpath: str, location: str
) -> None:
    with pytest.raises(HeaderInconsistent) as info:
        parse_envelope(edited(sample_xml, xpath, "remove"))

    assert info.value.location == location
    assert "mangler" in info.value.detail


def test_missing_cpa_id(sample_xml: bytes) -> None:
    with pytest.raises(HeaderInconsistent) as info:
        parse_envelope(edited(sample_xml, f"{MH}/eb:CPAId", "remove"))

    assert info.value.location == "//eb:MessageHeader/eb:CPAId"


@pytest.mark.parametrize("element", ["CPAId", "Action", "From/eb:PartyId"])
def test_empty_required_value_is_inconsistent(sample_xml: bytes, element: str) -> None:
    with pytest.raises(HeaderInconsistent) as info:
        parse_envelope(edited(sample_xml, f"{MH}/eb:{element}", "text", "  "))

    assert info.value.location == f"{MH}/eb:{element}"


def test_repeated_element_is_inconsistent(sample_xml: bytes) -> None:
    with pytest.raises(HeaderInconsistent, match="flere ganger") as info:
        parse_envelope(edited(sample_xml, f"{MH}/eb:CPAId", "duplicate"))

    assert info.value.location == f"{MH}/eb:CPAId"


@pytest.mark.parametrize(
    "value", ["yesterday", "2023-08-29", "2023-13-01T00:00:00Z", "2023-08-29 10:56:50Z"]
)
def test_bad_timestamp_is_not_recognized(sample_xml: bytes, value: str) -> None:
    xml = edited(sample_xml, f"{MH}/eb:MessageData/eb:Timestamp", "text", value)

    with pytest.raises(HeaderValueNotRecognized) as info:
        parse_envelope(xml)

    assert info.value.location == f"{MH}/eb:MessageData/eb:Timestamp"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-08-29T10:56:50.3069479Z", datetime(2023, 8, 29, 10, 56, 50, 306947, tzinfo=UTC)),
        ("2023-08-29T10:56:50Z", datetime(2023, 8, 29, 10, 56, 50, tzinfo=UTC)),
        ("2023-08-29T12:56:50.5+02:00", datetime(2023, 8, 29, 10, 56, 50, 500000, tzinfo=UTC)),
        ("2023-08-29T10:56:50", datetime(2023, 8, 29, 10, 56, 50, tzinfo=UTC)),
        ("2023-08-29T24:00:00Z", datetime(2023, 8, 30, tzinfo=UTC)),
        (" 2023-08-29T10:56:50Z\n", datetime(2023, 8, 29, 10, 56, 50, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(sample_xml: bytes, text: str, expected: datetime) -> None:
    xml = edited(sample_xml, f"{MH}/eb:MessageData/eb:Timestamp", "text", text)

    timestamp = parse_envelope(xml).header.timestamp

    assert timestamp == expected
    assert timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["2023-08-29T24:00:01Z", "9999-12-31T23:59:59-14:00", "2023-08-29T10:56:50+15:00"]
)
def test_out_of_range_timestamps_are_not_recognized(sample_xml: bytes, text: str) -> None:
    xml = edited(sample_xml, f"{MH}/eb:MessageData/eb:Timestamp", "text", text)

    with pytest.raises(HeaderValueNotRecognized):
        parse_envelope(xml)


def test_time_to_live_and_duplicate_elimination(sample_xml: bytes) -> None:
    root = etree.fromstring(sample_xml)
    data = root.find(f".//{{{EB_NS}}}MessageData")
    assert data is not None
    etree.SubElement(data, f"{{{EB_NS}}}RefToMessageId").text = "earlier@x"
    etree.SubElement(data, f"{{{EB_NS}}}TimeToLive").text = "2023-08-30T10:00:00Z"
    data.addnext(etree.Element(f"{{{EB_NS}}}DuplicateElimination"))

    h = parse_envelope(etree.tostring(root)).header

    assert h.ref_to_message_id == "earlier@x"
    assert h.time_to_live == datetime(2023, 8, 30, 10, tzinfo=UTC)
    assert h.duplicate_elimination


def test_other_ebms_version_is_not_supported(sample_xml: bytes) -> None:
    xml = set_attribute(sample_xml, MH, f"{{{EB_NS}}}version", "3.0")

    with pytest.raises(FeatureNotSupported) as info:
        parse_envelope(xml)

    assert info.value.location == f"{MH}/@eb:version"


def test_missing_ebms_version_is_inconsistent(sample_xml: bytes) -> None:
    xml = set_attribute(sample_xml, MH, f"{{{EB_NS}}}version", None)

    with pytest.raises(HeaderInconsistent):
        parse_envelope(xml)


def test_unknown_must_understand_header_is_not_supported(sample_xml: bytes) -> None:
    root = etree.fromstring(sample_xml)
    soap_header = root.find(f"{{{SOAP_NS}}}Header")
    assert soap_header is not None
    order = etree.SubElement(soap_header, f"{{{EB_NS}}}MessageOrder")
    order.set(f"{{{SOAP_NS}}}mustUnderstand", "1")

    with pytest.raises(FeatureNotSupported) as info:
        parse_envelope(etree.tostring(root))

    assert info.value.location == "/SOAP:Envelope/SOAP:Header/eb:MessageOrder"
    # Not addressed to us, or not mustUnderstand: ignored.
    order.set(f"{{{SOAP_NS}}}actor", "urn:example:someone-else")
    parse_envelope(etree.tostring(root))
    del order.attrib[f"{{{SOAP_NS}}}actor"]
    order.set(f"{{{SOAP_NS}}}mustUnderstand", "0")
    parse_envelope(etree.tostring(root))


def test_bad_must_understand_value_is_not_recognized(sample_xml: bytes) -> None:
    xml = set_attribute(sample_xml, MH, f"{{{SOAP_NS}}}mustUnderstand", "perhaps")

    with pytest.raises(HeaderValueNotRecognized):
        parse_envelope(xml)


def test_bad_ack_signed_flag_is_not_recognized(sample_xml: bytes) -> None:
    xml = set_attribute(sample_xml, "//eb:AckRequested", f"{{{EB_NS}}}signed", "yes")

    with pytest.raises(HeaderValueNotRecognized) as info:
        parse_envelope(xml)

    assert info.value.location == "//eb:AckRequested/@eb:signed"


def test_unsigned_ack_request(sample_xml: bytes) -> None:
    xml = set_attribute(sample_xml, "//eb:AckRequested", f"{{{EB_NS}}}signed", "false")

    message = parse_envelope(xml)

    assert message.ack_requested and not message.ack_signed


def test_no_ack_request(sample_xml: bytes) -> None:
    message = parse_envelope(edited(sample_xml, "//eb:AckRequested", "remove"))

    assert not message.ack_requested and not message.ack_signed


def test_manifest_reference_without_href_is_inconsistent(sample_xml: bytes) -> None:
    xml = set_attribute(
        sample_xml, "//eb:Manifest/eb:Reference", "{http://www.w3.org/1999/xlink}href", None
    )

    with pytest.raises(HeaderInconsistent) as info:
        parse_envelope(xml)

    assert info.value.location == "//eb:Manifest/eb:Reference/@xlink:href"


@pytest.mark.parametrize(
    ("href", "content_id"),
    [
        ("cid:a%40b.no", "a@b.no"),
        ("CID:x@y", "x@y"),
        ("https://example.no/payload", None),
    ],
)
def test_manifest_content_ids(sample_xml: bytes, href: str, content_id: str | None) -> None:
    xml = set_attribute(
        sample_xml, "//eb:Manifest/eb:Reference", "{http://www.w3.org/1999/xlink}href", href
    )

    assert parse_envelope(xml).manifest == (ManifestReference(href, content_id),)


def test_bad_error_severity_is_not_recognized(samples: Path) -> None:
    xml = set_attribute(
        (samples / "messageerror.xml").read_bytes(),
        "//eb:Error",
        f"{{{EB_NS}}}severity",
        "Fatal",
    )

    with pytest.raises(HeaderValueNotRecognized):
        parse_envelope(xml)


# --- not an ebXML envelope at all ------------------------------------------------------------


@pytest.mark.parametrize(
    ("xml", "needle"),
    [
        (b"", "tomt"),
        (b"not xml", "velformet"),
        (b"<SOAP:Envelope xmlns:SOAP='http://schemas.xmlsoap.org/soap/envelope/'>", "velformet"),
        (b"<a/>", "SOAP:Envelope"),
        (b"<e:Envelope xmlns:e='http://www.w3.org/2003/05/soap-envelope'/>", "SOAP:Envelope"),
        (b"<S:Envelope xmlns:S='http://schemas.xmlsoap.org/soap/envelope/'/>", "SOAP:Header"),
        (
            b"<S:Envelope xmlns:S='http://schemas.xmlsoap.org/soap/envelope/'>"
            b"<S:Header/><S:Body/></S:Envelope>",
            "MessageHeader",
        ),
        (b"<!DOCTYPE a><a/>", "DOCTYPE"),
        (
            b'<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b"<lol>&b;</lol>",
            "DOCTYPE",
        ),
        (
            b'<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]><x>&ext;</x>',
            "DOCTYPE",
        ),
    ],
)
def test_not_an_envelope(xml: bytes, needle: str) -> None:
    with pytest.raises(EnvelopeNotXml, match=re.escape(needle)):
        parse_envelope(xml)


def test_doctype_on_a_real_envelope_is_refused(sample_xml: bytes) -> None:
    xml = b'<!DOCTYPE SOAP:Envelope [<!ENTITY x "y">]>' + sample_xml

    with pytest.raises(EnvelopeNotXml, match="DOCTYPE"):
        parse_envelope(xml)


def test_peek_message_id(sample_xml: bytes) -> None:
    broken = edited(sample_xml, f"{MH}/eb:CPAId", "remove")

    with pytest.raises(EbxmlError):
        parse_envelope(broken)
    assert peek_message_id(broken) == "7104acf8-21e9-4ee7-b894-d413a00a8881"
    assert peek_message_id(b"<broken") is None
    assert peek_message_id(b"<a/>") is None


# --- build -----------------------------------------------------------------------------------


def test_build_envelope_round_trips() -> None:
    h = header(time_to_live=WHEN + timedelta(days=4), duplicate_elimination=True)
    manifest = [ManifestReference("cid:payload.1@gw.example", "payload.1@gw.example")]

    message = parse_envelope(
        build_envelope(h, manifest=manifest, ack_requested=True, ack_signed=True)
    )

    assert message == EbxmlMessage(
        header=h,
        ack_requested=True,
        ack_signed=True,
        manifest=tuple(manifest),
        acknowledgment_ref=None,
        error_list=(),
        has_signature=False,
    )


def test_build_envelope_minimal() -> None:
    h = header(service_type=None, ref_to_message_id=None)

    xml = build_envelope(h)
    message = parse_envelope(xml)

    assert message.header == h
    assert not message.ack_requested
    assert message.manifest == ()
    root = etree.fromstring(xml)
    body = root.find(f"{{{SOAP_NS}}}Body")
    assert body is not None and len(body) == 0


def test_build_envelope_attributes_follow_the_schema() -> None:
    root = etree.fromstring(
        build_envelope(
            header(),
            manifest=[ManifestReference("cid:p@x", "p@x")],
            ack_requested=True,
        )
    )

    mh = root.find(f".//{{{EB_NS}}}MessageHeader")
    ack = root.find(f".//{{{EB_NS}}}AckRequested")
    manifest = root.find(f".//{{{EB_NS}}}Manifest")
    assert mh is not None and ack is not None and manifest is not None
    assert mh.get(f"{{{SOAP_NS}}}mustUnderstand") == "1"
    assert mh.get(f"{{{EB_NS}}}version") == "2.0"
    assert ack.get(f"{{{SOAP_NS}}}mustUnderstand") == "1"
    assert ack.get(f"{{{SOAP_NS}}}actor") == ACTOR_TO_PARTY_MSH
    assert ack.get(f"{{{EB_NS}}}signed") == "false"
    assert manifest.get(f"{{{EB_NS}}}version") == "2.0"
    # A signature is appended last in SOAP:Header; nothing of ours must need to follow it.
    soap_header = root.find(f"{{{SOAP_NS}}}Header")
    assert soap_header is not None and soap_header[-1] is ack


def test_build_envelope_is_deterministic_utf8() -> None:
    h = header(from_party=Party((PartyId("79768", "HER"),), "Kontrollutbetaler æøå"))

    xml = build_envelope(h)

    assert xml == build_envelope(h)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "æøå".encode() in xml


@pytest.mark.parametrize(
    "changes",
    [
        {"cpa_id": ""},
        {"action": " "},
        {"timestamp": datetime(2024, 1, 1)},
        {"from_party": Party(())},
        {"to_party": Party((PartyId(""),))},
        {"service_type": ""},
    ],
)
def test_build_envelope_refuses_invalid_headers(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_envelope(header(**changes))


def test_build_envelope_refuses_signed_ack_without_ack() -> None:
    with pytest.raises(ValueError):
        build_envelope(header(), ack_signed=True)


def test_reply_header(sample_xml: bytes) -> None:
    incoming = parse_envelope(sample_xml).header

    reply = reply_header(
        incoming,
        action="Svarmelding",
        service="BehandlerKrav",
        service_type="string",
        message_id="r1@gw.example",
        timestamp=WHEN,
    )

    assert reply.from_party == incoming.to_party
    assert reply.to_party == incoming.from_party
    assert reply.cpa_id == incoming.cpa_id
    assert reply.conversation_id == incoming.conversation_id
    assert reply.ref_to_message_id == incoming.message_id
    assert (reply.service, reply.action, reply.message_id) == (
        "BehandlerKrav",
        "Svarmelding",
        "r1@gw.example",
    )
    assert reply.time_to_live is None


def test_format_timestamp() -> None:
    assert format_timestamp(WHEN) == "2024-05-06T07:08:09.123Z"
    assert format_timestamp(WHEN.replace(microsecond=0)) == "2024-05-06T07:08:09Z"
    oslo = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert format_timestamp(oslo) == "2024-05-06T07:08:09.123Z"
    with pytest.raises(ValueError):
        format_timestamp(datetime(2024, 1, 1))
