"""Tests for gateway.ebxml.signals, and schema conformance of every envelope we build.

Conformance: the SOAP 1.1 ``envelope.xsd`` lets Header and Body hold anything (``lax``), so a
small wrapper schema imports it together with ``msg-header-2_0.xsd``; with both compiled, lax
processing finds the ``eb:`` declarations and validates those elements strictly. The real sample
must pass and a known-bad one must fail before the approach is trusted.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from gateway.ebxml.compose import build_envelope, reply_header
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import ManifestReference, MessageHeader, Party, PartyId
from gateway.ebxml.namespaces import ACTOR_TO_PARTY_MSH, EB_NS, EB_SERVICE_NS, SOAP_NS, XML_NS
from gateway.ebxml.signals import (
    ErrorDetail,
    build_acknowledgment,
    build_message_error,
    error_detail_for,
    highest_severity,
)
from gateway.errors import (
    EnvelopeNotXml,
    HeaderInconsistent,
    HeaderValueNotRecognized,
    MimeProblem,
)

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
US = Party((PartyId("79768", "HER"),), "KontrollUtbetaler")
THEM = Party((PartyId("8141253", "HER"),), "Behandler")
CPA_ERROR = ErrorDetail(
    "ValueNotRecognized", "Error", "//eb:MessageHeader/eb:CPAId", "Ukjent CPAId: nav:qass:1"
)


@pytest.fixture(scope="module")
def samples(standards: Path) -> Path:
    return standards / "ebxml-ebms2" / "samples"


@pytest.fixture(scope="module")
def incoming(samples: Path) -> MessageHeader:
    return parse_envelope((samples / "2023_08_29T12_56_58_328.xml").read_bytes()).header


@pytest.fixture(scope="session")
def ebms_schema(standards: Path) -> etree.XMLSchema:
    """SOAP 1.1 envelope + ebMS 2.0 header schemas from the official files, offline."""
    folder = standards / "ebxml-ebms2"
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:import namespace="{SOAP_NS}" schemaLocation="{(folder / "envelope.xsd").as_uri()}"/>
  <xs:import namespace="{EB_NS}" schemaLocation="{(folder / "msg-header-2_0.xsd").as_uri()}"/>
</xs:schema>"""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser))


def assert_valid(schema: etree.XMLSchema, xml: bytes) -> None:
    document = etree.fromstring(xml, etree.XMLParser(no_network=True, resolve_entities=False))
    assert schema.validate(document), str(schema.error_log)


def eb(element: etree._Element, path: str) -> etree._Element:
    found = element.find(path, {"eb": EB_NS, "SOAP": SOAP_NS})
    assert found is not None, path
    return found


# --- Acknowledgment --------------------------------------------------------------------------


def test_acknowledgment_header_comes_from_the_receiving_side(incoming: MessageHeader) -> None:
    message = parse_envelope(build_acknowledgment(incoming, message_id="ack-1@gw", timestamp=WHEN))

    h = message.header
    assert h.from_party == incoming.to_party
    assert h.to_party == incoming.from_party
    assert (h.cpa_id, h.conversation_id) == (incoming.cpa_id, incoming.conversation_id)
    assert (h.service, h.service_type, h.action) == (EB_SERVICE_NS, None, "Acknowledgment")
    assert (h.message_id, h.timestamp) == ("ack-1@gw", WHEN)
    assert h.ref_to_message_id == incoming.message_id
    assert message.acknowledgment_ref == incoming.message_id
    assert not message.ack_requested
    assert message.manifest == ()


def test_acknowledgment_element(incoming: MessageHeader) -> None:
    received = WHEN - timedelta(seconds=5)
    root = etree.fromstring(
        build_acknowledgment(incoming, message_id="a@gw", timestamp=WHEN, received_at=received)
    )

    ack = eb(root, "SOAP:Header/eb:Acknowledgment")
    assert ack.get(f"{{{SOAP_NS}}}actor") == ACTOR_TO_PARTY_MSH
    assert ack.get(f"{{{SOAP_NS}}}mustUnderstand") == "1"
    assert ack.get(f"{{{EB_NS}}}version") == "2.0"
    assert eb(ack, "eb:Timestamp").text == "2024-05-06T07:08:04.123Z"
    assert eb(ack, "eb:RefToMessageId").text == incoming.message_id
    assert eb(ack, "eb:From/eb:PartyId").text == "79768"
    header = eb(root, "SOAP:Header")
    assert header[-1] is ack  # a ds:Signature goes after it


def test_acknowledgment_is_deterministic(incoming: MessageHeader) -> None:
    first = build_acknowledgment(incoming, message_id="a@gw", timestamp=WHEN)

    assert build_acknowledgment(incoming, message_id="a@gw", timestamp=WHEN) == first


# --- MessageError ----------------------------------------------------------------------------


def test_message_error_about_a_parsed_message(incoming: MessageHeader) -> None:
    xml = build_message_error(
        incoming,
        [CPA_ERROR],
        message_id="err-1@gw",
        timestamp=WHEN,
        our_party=US,
        their_party=None,
    )

    message = parse_envelope(xml)
    h = message.header
    assert (h.service, h.action) == (EB_SERVICE_NS, "MessageError")
    assert h.from_party == US
    assert h.to_party == incoming.from_party
    assert (h.cpa_id, h.conversation_id) == (incoming.cpa_id, incoming.conversation_id)
    assert h.ref_to_message_id == incoming.message_id
    assert message.error_list == (CPA_ERROR,)


def test_message_error_without_a_readable_header() -> None:
    xml = build_message_error(
        None,
        [CPA_ERROR],
        message_id="err-2@gw",
        timestamp=WHEN,
        our_party=US,
        their_party=Party((PartyId("mailto:post@speare.example"),)),
    )

    h = parse_envelope(xml).header
    assert h.cpa_id == "unknown"
    assert h.conversation_id == "unknown"
    assert h.ref_to_message_id is None
    assert h.to_party.party_ids == (PartyId("mailto:post@speare.example", None),)
    assert b"RefToMessageId" not in xml


def test_message_error_with_recovered_message_id_and_cpa_fallback() -> None:
    xml = build_message_error(
        None,
        [CPA_ERROR],
        message_id="err-3@gw",
        timestamp=WHEN,
        our_party=US,
        their_party=THEM,
        cpa_id_fallback="nav:qass:35065",
        ref_to_message_id="7104acf8@x",
    )

    h = parse_envelope(xml).header
    assert (h.cpa_id, h.ref_to_message_id, h.to_party) == ("nav:qass:35065", "7104acf8@x", THEM)


def test_their_party_wins_over_incoming_from(incoming: MessageHeader) -> None:
    other = Party((PartyId("123", "HER"),))

    xml = build_message_error(
        incoming, [CPA_ERROR], message_id="e@gw", timestamp=WHEN, our_party=US, their_party=other
    )

    assert parse_envelope(xml).header.to_party == other


def test_error_list_attributes(incoming: MessageHeader) -> None:
    warning = ErrorDetail("Inconsistent", "Warning", None, "Bare en advarsel", lang="nb")
    nameless = ErrorDetail("Unknown", "Warning", None, "")

    root = etree.fromstring(
        build_message_error(
            incoming,
            [warning, nameless],
            message_id="e@gw",
            timestamp=WHEN,
            our_party=US,
            their_party=None,
        )
    )

    error_list = eb(root, "SOAP:Header/eb:ErrorList")
    assert error_list.get(f"{{{SOAP_NS}}}mustUnderstand") == "1"
    assert error_list.get(f"{{{EB_NS}}}version") == "2.0"
    assert error_list.get(f"{{{EB_NS}}}highestSeverity") == "Warning"
    first, second = error_list.findall(f"{{{EB_NS}}}Error")
    assert first.get(f"{{{EB_NS}}}errorCode") == "Inconsistent"
    assert first.get(f"{{{EB_NS}}}severity") == "Warning"
    assert first.get(f"{{{EB_NS}}}location") is None
    assert eb(first, "eb:Description").get(f"{{{XML_NS}}}lang") == "nb"
    assert second.find(f"{{{EB_NS}}}Description") is None  # empty text is left out
    assert eb(root, "SOAP:Header")[-1] is error_list


def test_highest_severity() -> None:
    warning = ErrorDetail("Unknown", "Warning", None, "w")

    assert highest_severity([warning]) == "Warning"
    assert highest_severity([warning, CPA_ERROR]) == "Error"


@pytest.mark.parametrize(
    ("errors", "their_party"),
    [
        ([], THEM),
        ([ErrorDetail("NoSuchCode", "Error", None, "x")], THEM),
        ([ErrorDetail("Unknown", "Fatal", None, "x")], THEM),  # type: ignore[arg-type]
        ([CPA_ERROR], None),
    ],
)
def test_message_error_refuses_what_it_cannot_send(
    errors: list[ErrorDetail], their_party: Party | None
) -> None:
    with pytest.raises(ValueError):
        build_message_error(
            None, errors, message_id="e@gw", timestamp=WHEN, our_party=US, their_party=their_party
        )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (MimeProblem("Avsluttende grense mangler."), "MimeProblem"),
        (EnvelopeNotXml("Ikke XML."), "OtherXml"),
        (
            HeaderValueNotRecognized("Ukjent CPA.", location="//eb:MessageHeader/eb:CPAId"),
            "ValueNotRecognized",
        ),
        (HeaderInconsistent("eb:CPAId mangler."), "Inconsistent"),
    ],
)
def test_error_detail_for_exceptions(error: MimeProblem, code: str) -> None:
    detail = error_detail_for(error)

    assert detail.code == code
    assert detail.severity == "Error"
    assert detail.location == error.location
    assert detail.description.endswith(error.detail)
    assert detail.lang == "no"


# --- conformance with the official schemas ---------------------------------------------------


@pytest.mark.conformance
def test_schema_approach_accepts_the_real_samples(
    ebms_schema: etree.XMLSchema, samples: Path
) -> None:
    assert_valid(ebms_schema, (samples / "2023_08_29T12_56_58_328.xml").read_bytes())
    assert_valid(ebms_schema, (samples / "messageerror.xml").read_bytes())


@pytest.mark.conformance
def test_schema_approach_really_checks_eb_elements(
    ebms_schema: etree.XMLSchema, samples: Path
) -> None:
    # The acknowledgment sample uses mustUnderstand="true", which the SOAP schema forbids.
    document = etree.fromstring((samples / "acknowledgment.xml").read_bytes())
    assert not ebms_schema.validate(document)
    # A MessageHeader without CPAId fails, so lax processing did reach the eb: declarations.
    sample = etree.fromstring((samples / "2023_08_29T12_56_58_328.xml").read_bytes())
    cpa = sample.find(f".//{{{EB_NS}}}CPAId")
    assert cpa is not None
    cpa.getparent().remove(cpa)  # type: ignore[union-attr]
    assert not ebms_schema.validate(sample)


@pytest.mark.conformance
def test_acknowledgment_validates(ebms_schema: etree.XMLSchema, incoming: MessageHeader) -> None:
    assert_valid(ebms_schema, build_acknowledgment(incoming, message_id="a@gw", timestamp=WHEN))


@pytest.mark.conformance
@pytest.mark.parametrize("with_incoming", [True, False])
def test_message_error_validates(
    ebms_schema: etree.XMLSchema, incoming: MessageHeader, with_incoming: bool
) -> None:
    errors = [
        CPA_ERROR,
        ErrorDetail("MimeProblem", "Warning", None, "Feil i MIME-pakken: æøå"),
        ErrorDetail("Unknown", "Error", None, ""),
    ]

    xml = build_message_error(
        incoming if with_incoming else None,
        errors,
        message_id="e@gw",
        timestamp=WHEN,
        our_party=US,
        their_party=None if with_incoming else THEM,
    )

    assert_valid(ebms_schema, xml)


@pytest.mark.conformance
@pytest.mark.parametrize("full", [True, False])
def test_apprec_envelope_validates(
    ebms_schema: etree.XMLSchema, incoming: MessageHeader, full: bool
) -> None:
    header = reply_header(
        incoming,
        action="Svarmelding",
        service="BehandlerKrav",
        service_type="string" if full else None,
        message_id="r1@gw",
        timestamp=WHEN,
        duplicate_elimination=full,
    )
    if full:
        header = replace(header, time_to_live=WHEN + timedelta(days=4))

    xml = build_envelope(
        header,
        manifest=[ManifestReference("cid:apprec.1@gw", "apprec.1@gw")] if full else [],
        ack_requested=full,
        ack_signed=full,
    )

    assert_valid(ebms_schema, xml)
