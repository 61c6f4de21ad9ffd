"""Parsing MsgHead + BehandlerKrav: the real sample, normalisation rules and error cases."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.claims import (
    BKM_NS,
    MSGHEAD_NS,
    BehandlerKrav,
    Code,
    Ident,
    MsgHeadDocument,
    parse_behandlerkrav,
    parse_msghead,
)
from gateway.errors import ContentError, SchemaInvalid, UnsupportedMessageType
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm

SAMPLE = "bkm-2006-12-20/samples/2023_08_29T12_56_58_328.p7m.deenveloped.ungz"
NS = {"mh": MSGHEAD_NS, "b": BKM_NS}
KRAV_PATH = "/MsgHead/Document/RefDoc/Content/BehandlerKrav"


@pytest.fixture(scope="module")
def sample_root(standards: Path) -> etree._Element:
    return etree.parse(str(standards / SAMPLE)).getroot()


@pytest.fixture(scope="module")
def sample(sample_root: etree._Element) -> tuple[MsgHeadDocument, BehandlerKrav]:
    document = parse_msghead(sample_root)
    return document, parse_behandlerkrav(document.content)


def _generated() -> etree._Element:
    """A small generated psychologist claim: two bills, one takst each."""
    head, krav = make_claim(
        rng=random.Random(7),
        practitioner="psykolog",
        bills=2,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2024, 3, 4, 9, 0),
    )
    return etree.fromstring(msghead_with_bkm(head, krav))


def _one(root: etree._Element, xpath: str) -> etree._Element:
    found = root.xpath(xpath, namespaces=NS)
    assert isinstance(found, list) and found, xpath
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def _parse_all(root: etree._Element) -> BehandlerKrav:
    return parse_behandlerkrav(parse_msghead(root).content)


# --- The real sample -----------------------------------------------------------------------------


def test_sample_msghead(sample: tuple[MsgHeadDocument, BehandlerKrav]) -> None:
    head = sample[0].head
    assert head.msg_id == "e10c4758-c559-4b54-8427-fb97e89c99bb"
    assert head.msg_type == Code("POM", None, "Poliklinisk oppgjørsmelding")
    assert head.mig_version == "v1.2 2006-05-24"
    assert head.gen_date == datetime(2023, 8, 29, 10, 56, 50)
    assert head.content_description == "BehandlerKrav"
    assert head.sender.name == "Speare AS"
    assert head.sender.her_id == "8141253"
    assert head.sender.ident("ENH") == "993954896"
    professional = head.sender.professional
    assert professional is not None
    assert professional.type == Code("PS", None, "Psykolog")
    assert (professional.family_name, professional.given_name) == ("Testsen", "Test")
    assert professional.idents == (Ident("12345", "HPR-nummer"),)
    assert head.receiver.her_id == "79768"
    assert head.receiver.ident("ENH") == "889640782"
    assert head.receiver.professional is None


def test_sample_payload_and_signature(sample: tuple[MsgHeadDocument, BehandlerKrav]) -> None:
    document = sample[0]
    assert document.content.tag == f"{{{BKM_NS}}}BehandlerKrav"
    assert document.signature is not None
    assert document.signature.tag == "{http://www.w3.org/2000/09/xmldsig#}Signature"


def test_sample_behandlerkrav(sample: tuple[MsgHeadDocument, BehandlerKrav]) -> None:
    krav = sample[1]
    assert (krav.navn_epj, krav.versjon_epj) == ("Speare Journal", "1")
    assert krav.antall_regninger == 2
    assert krav.sum_krav_samlet == Decimal("375.00")
    first, second = krav.regninger
    assert first.guid == "{04db7c38-3a4c-43ca-92eb-e2564857bc97}"
    assert [r.regning_nr for r in krav.regninger] == ["36281", "36282"]
    assert (first.betalt_egenandel, first.egenandel_korrigering) == (True, False)
    assert (second.betalt_egenandel, second.kreditering) == (False, False)
    assert first.dato_tid == datetime(2023, 6, 5)
    assert first.patient.type == "FNR"
    for regning in krav.regninger:
        (takst,) = regning.behandling.takster
        assert (takst.kode, takst.verdi, takst.antall) == ("201b", Decimal("375.00"), 1)
        assert str(takst.verdi) == "375.00"  # kept as sent
    b1, b2 = first.behandling, second.behandling
    assert (b1.sum_refusjon, b2.sum_refusjon) == (Decimal("0.00"), Decimal("375.00"))
    assert b1.kode_egenandel is None
    assert b2.kode_egenandel == Code("F", None, "Frikort")
    assert b1.diagnoser == (Code("F321", "2.16.578.1.12.4.1.1.7110", "Moderat depressiv episode"),)
    assert [d.value for d in b2.diagnoser] == ["F431"]
    assert b1.henvisnings_dato == date(2021, 3, 7)
    assert (b1.henvisnings_id, b1.relatert_behandler) == ("1215", "9144897")
    assert b1.henvisnings_diagnose == Code("P99", "2.16.578.1.12.4.1.1.7110", "Psykisk lidelse IKA")
    assert (b1.prosedyrekoder, b1.tenner) == ((), ())


def test_document_repr_has_no_patient_id(sample: tuple[MsgHeadDocument, BehandlerKrav]) -> None:
    assert "15076500565" not in repr(sample[0])


# --- MsgHead: unsupported documents ---------------------------------------------------------------


def test_root_must_be_msghead() -> None:
    root = _generated()
    with pytest.raises(UnsupportedMessageType) as info:
        parse_msghead(_one(root, "//b:BehandlerKrav"))
    assert info.value.location == KRAV_PATH


def test_msghead_in_other_namespace_is_unsupported() -> None:
    xml = b'<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2004-11-21"/>'
    with pytest.raises(UnsupportedMessageType):
        parse_msghead(etree.fromstring(xml))


def test_file_reference_is_unsupported() -> None:
    root = _generated()
    content = _one(root, "//mh:Content")
    ref_doc = content.getparent()
    assert ref_doc is not None
    ref_doc.remove(content)
    etree.SubElement(ref_doc, f"{{{MSGHEAD_NS}}}FileReference").text = "cid:payload"
    with pytest.raises(UnsupportedMessageType) as info:
        parse_msghead(root)
    assert "FileReference" in info.value.detail


def test_empty_content_is_unsupported() -> None:
    root = _generated()
    content = _one(root, "//mh:Content")
    for child in list(content):
        content.remove(child)
    content.text = "ikke XML"
    with pytest.raises(UnsupportedMessageType) as info:
        parse_msghead(root)
    assert info.value.location == "/MsgHead/Document[1]/RefDoc/Content"


def test_patient_report_is_unsupported() -> None:
    root = _generated()
    document = _one(root, "mh:Document")
    document.tag = f"{{{MSGHEAD_NS}}}PatientReport"
    with pytest.raises(UnsupportedMessageType):
        parse_msghead(root)


def test_first_document_with_content_is_used() -> None:
    root = _generated()
    document = _one(root, "mh:Document")
    extra = etree.Element(f"{{{MSGHEAD_NS}}}Document")
    ref_doc = etree.SubElement(extra, f"{{{MSGHEAD_NS}}}RefDoc")
    etree.SubElement(ref_doc, f"{{{MSGHEAD_NS}}}FileReference").text = "cid:other"
    document.addprevious(extra)
    document_ = parse_msghead(root)
    assert document_.content.tag == f"{{{BKM_NS}}}BehandlerKrav"
    assert document_.head.content_description == "BehandlerKrav"


def test_no_signature_is_none() -> None:
    assert parse_msghead(_generated()).signature is None


# --- MsgHead: missing or malformed parts ----------------------------------------------------------


@pytest.mark.parametrize(
    ("xpath", "location"),
    [
        ("mh:MsgInfo/mh:MsgId", "/MsgHead/MsgInfo/MsgId"),
        ("mh:MsgInfo/mh:Type", "/MsgHead/MsgInfo/Type"),
        ("mh:MsgInfo/mh:Sender", "/MsgHead/MsgInfo/Sender"),
        (
            "mh:MsgInfo/mh:Receiver/mh:Organisation/mh:OrganisationName",
            "/MsgHead/MsgInfo/Receiver/Organisation/OrganisationName",
        ),
        ("mh:Document", "/MsgHead/Document"),
        ("mh:Document/mh:RefDoc", "/MsgHead/Document[1]/RefDoc"),
    ],
)
def test_missing_msghead_element(xpath: str, location: str) -> None:
    root = _generated()
    element = _one(root, xpath)
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)
    with pytest.raises(SchemaInvalid) as info:
        parse_msghead(root)
    assert info.value.location == location
    assert "mangler" in info.value.detail


def test_organisation_without_ident() -> None:
    root = _generated()
    organisation = _one(root, "mh:MsgInfo/mh:Sender/mh:Organisation")
    for ident in organisation.findall(f"{{{MSGHEAD_NS}}}Ident"):
        organisation.remove(ident)
    with pytest.raises(SchemaInvalid) as info:
        parse_msghead(root)
    assert info.value.location == "/MsgHead/MsgInfo/Sender/Organisation/Ident"


def test_ident_without_type_code() -> None:
    root = _generated()
    type_id = _one(root, "mh:MsgInfo/mh:Sender/mh:Organisation/mh:Ident[2]/mh:TypeId")
    del type_id.attrib["V"]
    with pytest.raises(SchemaInvalid) as info:
        parse_msghead(root)
    assert info.value.location == "/MsgHead/MsgInfo/Sender/Organisation/Ident[2]/TypeId/@V"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-08-29T10:56:50", datetime(2023, 8, 29, 10, 56, 50)),
        (" 2023-08-29T10:56:50 ", datetime(2023, 8, 29, 10, 56, 50)),
        ("2023-08-29T10:56:50.5", datetime(2023, 8, 29, 10, 56, 50, 500000)),
        # Sub-microsecond digits are truncated, never rounded into the next second.
        ("2023-08-29T10:56:59.9999999", datetime(2023, 8, 29, 10, 56, 59, 999999)),
        ("2023-08-29T08:56:50Z", datetime(2023, 8, 29, 10, 56, 50)),  # summer: UTC+2
        ("2023-01-15T10:00:00+01:00", datetime(2023, 1, 15, 10, 0)),
        ("2023-01-15T10:00:00-05:30", datetime(2023, 1, 15, 16, 30)),
        ("2023-03-26T01:30:00Z", datetime(2023, 3, 26, 3, 30)),  # across the DST change
        ("2023-12-31T24:00:00", datetime(2024, 1, 1)),
    ],
)
def test_gen_date_normalised_to_naive_oslo_time(text: str, expected: datetime) -> None:
    root = _generated()
    _one(root, "mh:MsgInfo/mh:GenDate").text = text
    gen_date = parse_msghead(root).head.gen_date
    assert gen_date == expected
    assert gen_date.tzinfo is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2023-08-29",
        "2023-08-29 10:56:50",
        "2023-02-29T10:00:00",
        "2023-08-29T10:56",
        "2023-08-29T10:56:50+15:00",
        "2023-08-29T10:56:50+01",
        "2023-12-31T24:00:01",
        "-2023-08-29T10:56:50",
        "12023-08-29T10:56:50",
        "0000-01-01T00:00:00",
        "0001-01-01T00:00:00+14:00",  # would fall before year 1
        "9999-12-31T23:59:59-14:00",  # would fall after year 9999
        "٢٠٢٣-08-29T10:56:50",  # non-ASCII digits
        "20230829T105650",
    ],
)
def test_bad_gen_date(text: str) -> None:
    root = _generated()
    _one(root, "mh:MsgInfo/mh:GenDate").text = text
    with pytest.raises(SchemaInvalid) as info:
        parse_msghead(root)
    assert info.value.location == "/MsgHead/MsgInfo/GenDate"


# --- BehandlerKrav -------------------------------------------------------------------------------


def test_behandlerkrav_root_must_match() -> None:
    root = _generated()
    with pytest.raises(UnsupportedMessageType) as info:
        parse_behandlerkrav(root)
    assert info.value.location == "/MsgHead"
    other = etree.fromstring(b'<BehandlerKrav xmlns="http://www.kith.no/xmlstds/bkm/2001"/>')
    with pytest.raises(UnsupportedMessageType):
        parse_behandlerkrav(other)


def test_standalone_behandlerkrav_locations() -> None:
    krav = _one(_generated(), "//b:BehandlerKrav")
    standalone = etree.fromstring(etree.tostring(krav))
    _one(standalone, "b:Krav/b:AntallRegninger").text = "0"
    with pytest.raises(SchemaInvalid) as info:
        parse_behandlerkrav(standalone)
    assert info.value.location == "/BehandlerKrav/Krav/AntallRegninger"


VERDI = "b:Enkeltregning[2]/b:Behandling/b:Takst[1]/b:Verdi"
VERDI_LOCATION = f"{KRAV_PATH}/Enkeltregning[2]/Behandling/Takst[1]/Verdi/@V"


@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1E2",
        "1e2",
        "375,00",
        "1_000.00",
        "",
        " ",
        ".",
        "-1.00",
        "1.001",
        "1234567890123",  # 13 digits
        "12345678901.23",
        "0x10",
        "٣٧٥",  # non-ASCII digits
        "375.00 NOK",
    ],
)
def test_bad_amount(value: str) -> None:
    root = _generated()
    krav = _one(root, "//b:BehandlerKrav")
    _one(krav, VERDI).set("V", value)
    with pytest.raises(SchemaInvalid) as info:
        _parse_all(root)
    assert info.value.location == VERDI_LOCATION


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("375", "375"),
        ("375.0", "375.0"),
        ("+375.00", "375.00"),
        (" 375.00 ", "375.00"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1.500", "1.500"),  # trailing zeros are not extra decimals
        ("-0.00", "-0.00"),
        ("0001234567890.12", "1234567890.12"),
    ],
)
def test_amount_forms(value: str, expected: str) -> None:
    root = _generated()
    _one(_one(root, "//b:BehandlerKrav"), VERDI).set("V", value)
    verdi = _parse_all(root).regninger[1].behandling.takster[0].verdi
    assert verdi == Decimal(expected)
    assert str(verdi) == str(Decimal(expected))


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("1", True), (" false ", False), ("0", False)]
)
def test_boolean_forms(value: str, expected: bool) -> None:
    root = _generated()
    _one(root, "//b:Enkeltregning[1]/b:Kreditering").text = value
    _one(root, "//b:Enkeltregning[1]/b:BetaltEgenandel").set("korrigering", value)
    regning = _parse_all(root).regninger[0]
    assert regning.kreditering is expected
    assert regning.egenandel_korrigering is expected


@pytest.mark.parametrize("value", ["TRUE", "True", "yes", "", "2", "ja"])
def test_bad_boolean(value: str) -> None:
    root = _generated()
    _one(root, "//b:Enkeltregning[1]/b:BetaltEgenandel").set("erBetalt", value)
    with pytest.raises(SchemaInvalid) as info:
        _parse_all(root)
    assert info.value.location == f"{KRAV_PATH}/Enkeltregning[1]/BetaltEgenandel/@erBetalt"


def test_korrigering_defaults_to_false() -> None:
    root = _generated()
    del _one(root, "//b:Enkeltregning[1]/b:BetaltEgenandel").attrib["korrigering"]
    assert _parse_all(root).regninger[0].egenandel_korrigering is False


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("+3", 3), ("007", 7), (" 12 ", 12)])
def test_antall_forms(value: str, expected: int) -> None:
    root = _generated()
    _one(root, "//b:Enkeltregning[1]/b:Behandling/b:Takst/b:Antall").text = value
    assert _parse_all(root).regninger[0].behandling.takster[0].antall == expected


@pytest.mark.parametrize("value", ["0", "-1", "1.0", "", "1e3", "١", "9" * 19, "9" * 5000])
def test_bad_antall(value: str) -> None:
    root = _generated()
    _one(root, "//b:Enkeltregning[1]/b:Behandling/b:Takst/b:Antall").text = value
    with pytest.raises(SchemaInvalid) as info:
        _parse_all(root)
    assert info.value.location == f"{KRAV_PATH}/Enkeltregning[1]/Behandling/Takst[1]/Antall"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-03-07", date(2021, 3, 7)),
        ("2021-03-07Z", date(2021, 3, 7)),
        ("2021-03-07-05:00", date(2021, 3, 7)),
    ],
)
def test_henvisningsdato_forms(value: str, expected: date) -> None:
    root = _generated()
    _one(root, "//b:Enkeltregning[1]/b:Behandling/b:HenvisningsDato").text = value
    assert _parse_all(root).regninger[0].behandling.henvisnings_dato == expected


@pytest.mark.parametrize("value", ["2021-02-30", "2021-3-7", "07.03.2021", "2021-03-07T00:00:00"])
def test_bad_henvisningsdato(value: str) -> None:
    root = _generated()
    _one(root, "//b:Enkeltregning[1]/b:Behandling/b:HenvisningsDato").text = value
    with pytest.raises(SchemaInvalid):
        _parse_all(root)


def test_whitespace_and_comments() -> None:
    root = _generated()
    regning = _one(root, "//b:Enkeltregning[1]")
    _one(regning, "b:Guid").text = "\n  {ABC-def}  \n"
    _one(regning, "b:RegningNr").text = "  A \t 17\n"
    kode = _one(regning, "b:Behandling/b:Takst/b:Kode")
    kode.text = "20"
    comment = etree.Comment("EPJ-kommentar")
    comment.tail = "1b"
    kode.append(comment)
    parsed = _parse_all(root).regninger[0]
    assert parsed.guid == "{ABC-def}"
    assert parsed.regning_nr == "A 17"
    assert parsed.behandling.takster[0].kode == "201b"


def test_value_with_child_elements_is_invalid() -> None:
    root = _generated()
    kode = _one(root, "//b:Enkeltregning[1]/b:Behandling/b:Takst/b:Kode")
    etree.SubElement(kode, f"{{{BKM_NS}}}Kode").text = "201b"
    with pytest.raises(SchemaInvalid) as info:
        _parse_all(root)
    assert info.value.location == f"{KRAV_PATH}/Enkeltregning[1]/Behandling/Takst[1]/Kode"


def _remove(xpath: str) -> Callable[[etree._Element], None]:
    def mutate(root: etree._Element) -> None:
        found = root.xpath(xpath, namespaces=NS)
        assert isinstance(found, list)
        for element in found:
            assert isinstance(element, etree._Element)
            parent = element.getparent()
            assert parent is not None
            parent.remove(element)

    return mutate


@pytest.mark.parametrize(
    ("xpath", "location"),
    [
        ("//b:Enkeltregning", f"{KRAV_PATH}/Enkeltregning"),
        ("//b:Krav", f"{KRAV_PATH}/Krav"),
        (
            "//b:Enkeltregning[2]/b:Behandling/b:Takst",
            f"{KRAV_PATH}/Enkeltregning[2]/Behandling/Takst",
        ),
        ("//b:Enkeltregning[2]/b:Guid", f"{KRAV_PATH}/Enkeltregning[2]/Guid"),
        ("//b:Enkeltregning[1]/b:Patient/b:Ident", f"{KRAV_PATH}/Enkeltregning[1]/Patient/Ident"),
        (
            "//b:Enkeltregning[1]/b:Behandling/b:SumKrav/b:Refusjon",
            f"{KRAV_PATH}/Enkeltregning[1]/Behandling/SumKrav/Refusjon",
        ),
    ],
)
def test_missing_bkm_element(xpath: str, location: str) -> None:
    root = _generated()
    _remove(xpath)(root)
    with pytest.raises(SchemaInvalid) as info:
        _parse_all(root)
    assert info.value.location == location


def test_element_in_foreign_namespace_does_not_count() -> None:
    root = _generated()
    _one(root, "//b:Enkeltregning[1]/b:Guid").tag = "{urn:other}Guid"
    with pytest.raises(SchemaInvalid) as info:
        _parse_all(root)
    assert info.value.location == f"{KRAV_PATH}/Enkeltregning[1]/Guid"


def test_diagnose_without_code() -> None:
    root = _generated()
    del _one(root, "//b:Enkeltregning[1]/b:Behandling/b:Diagnose").attrib["V"]
    with pytest.raises(SchemaInvalid) as info:
        _parse_all(root)
    assert info.value.location == f"{KRAV_PATH}/Enkeltregning[1]/Behandling/Diagnose[1]/@V"


def test_errors_never_quote_the_patient_id() -> None:
    root = _generated()
    regning = _one(root, "//b:Enkeltregning[1]")
    fnr = _one(regning, "b:Patient/b:Ident/b:Id").text
    assert fnr is not None
    fixes = {
        "Kreditering": ("b:Kreditering", "false"),
        "DatoTid": ("b:DatoTid", "2024-01-01T10:00:00"),
    }
    for xpath, _ in fixes.values():
        _one(regning, xpath).text = fnr
    _one(regning, "b:Behandling/b:Takst/b:Verdi").set("V", fnr + ".123")
    seen = []
    while True:
        try:
            _parse_all(root)
            break
        except ContentError as error:
            assert fnr not in f"{error} {error.detail} {error.location} {error!r}"
            assert error.location is not None
            target = error.location.rsplit("/", 1)[-1]
            seen.append(target)
            if target == "@V":
                _one(regning, "b:Behandling/b:Takst/b:Verdi").set("V", "1.00")
            else:
                xpath, good = fixes[target]
                _one(regning, xpath).text = good
    assert sorted(seen) == ["@V", "DatoTid", "Kreditering"]
