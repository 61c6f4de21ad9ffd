"""AppRec v1.0 building and the MsgHead carrier: structure and content (schemas: conformance)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from lxml import etree

from gateway.claims.model import Code, HealthcareProfessional, Ident, Organisation
from gateway.errors import APPREC_ERROR_CODE_SYSTEM, RECEIPTS, NotXml, SchemaInvalid
from gateway.receipts.apprec import (
    APPREC_NS,
    MSGHEAD_NS,
    AppRec,
    AppRecError,
    AppRecStatus,
    AppRecVersion,
    apprec_from_msghead,
    build_apprec,
    format_datetime,
    serialize_apprec,
    wrap_in_msghead,
    xml_safe,
)

AR = f"{{{APPREC_NS}}}"
MH = f"{{{MSGHEAD_NS}}}"
NS = {"ar": APPREC_NS, "mh": MSGHEAD_NS}

HELFO = Organisation("Helfo", (Ident("79768", "HER"), Ident("889640782", "ENH")))
PRACTITIONER = HealthcareProfessional(
    type=Code("PS", text="Psykolog"),
    family_name="Testsen",
    given_name="Test",
    idents=(Ident("01017012345", "FNR"), Ident("12345", "HPR")),
)
SPEARE = Organisation(
    "Speare AS", (Ident("8141253", "HER"), Ident("993954896", "ENH")), PRACTITIONER
)
POM = Code("POM", text="Poliklinisk oppgjørsmelding")
T02 = RECEIPTS[SchemaInvalid]


def make_apprec(
    status: AppRecStatus = AppRecStatus.OK,
    errors: tuple[AppRecError, ...] = (),
    *,
    sender: Organisation = HELFO,
    receiver: Organisation = SPEARE,
) -> AppRec:
    return AppRec(
        id="5f0c8d1e-0000-4000-8000-000000000001",
        gen_date=datetime(2024, 3, 1, 12, 30, 45, 987654),
        sender=sender,
        receiver=receiver,
        status=status,
        errors=errors,
        original_msg_type=POM,
        original_issue_date=datetime(2023, 8, 29, 10, 56, 50),
        original_msg_id="e10c4758-c559-4b54-8427-fb97e89c99bb",
        software_version="0.1.0",
    )


def get(
    parent: etree._Element | None, path: str, namespaces: dict[str, str] | None = None
) -> etree._Element:
    """``parent.find(path)``, failing the test when there is nothing."""
    assert parent is not None
    found = parent.find(path, namespaces)
    assert found is not None, f"{path} not found"
    return found


def attrs(element: etree._Element) -> dict[str, str]:
    return {str(k): str(v) for k, v in element.attrib.items()}


def local_names(element: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in element]


def test_status_texts_follow_code_list_8258() -> None:
    assert [(int(s), s.text) for s in AppRecStatus] == [
        (1, "OK"),
        (2, "Avvist"),
        (3, "OK, feil i delmelding"),
    ]


def test_status_ok_has_the_sample_shape() -> None:
    root = build_apprec(make_apprec())

    assert root.tag == AR + "AppRec"
    assert root.nsmap == {None: APPREC_NS}
    assert local_names(root) == [
        "MsgType",
        "MIGversion",
        "SoftwareName",
        "SoftwareVersion",
        "GenDate",
        "Id",
        "Sender",
        "Receiver",
        "Status",
        "OriginalMsgId",
    ]
    assert attrs(get(root, AR + "MsgType")) == {"V": "APPREC", "DN": "Applikasjonskvittering"}
    assert root.findtext(AR + "MIGversion") == "1.0 2004-11-21"
    assert root.findtext(AR + "SoftwareName") == "gateway"
    assert root.findtext(AR + "GenDate") == "2024-03-01T12:30:45"  # seconds, no zone
    assert attrs(get(root, AR + "Status")) == {"V": "1", "DN": "OK"}
    original = get(root, AR + "OriginalMsgId")
    assert attrs(get(original, AR + "MsgType")) == {
        "V": "POM",
        "DN": "Poliklinisk oppgjørsmelding",
    }
    assert original.findtext(AR + "IssueDate") == "2023-08-29T10:56:50"
    assert original.findtext(AR + "Id") == "e10c4758-c559-4b54-8427-fb97e89c99bb"


def test_sender_and_receiver_use_her_id_and_list_the_rest_as_additional_ids() -> None:
    root = build_apprec(make_apprec())

    inst = get(root, "ar:Sender/ar:HCP/ar:Inst", NS)
    assert local_names(inst) == ["Name", "Id", "TypeId", "AdditionalId"]
    assert inst.findtext(AR + "Name") == "Helfo"
    assert inst.findtext(AR + "Id") == "79768"
    assert attrs(get(inst, AR + "TypeId")) == {"V": "HER", "DN": "HER-id"}
    assert inst.findtext("ar:AdditionalId/ar:Id", namespaces=NS) == "889640782"
    assert attrs(get(inst, "ar:AdditionalId/ar:Type", NS)) == {
        "V": "ENH",
        "DN": "Organisasjonsnummeret i Enhetsregister",
    }
    assert root.findtext("ar:Receiver/ar:HCP/ar:Inst/ar:Id", namespaces=NS) == "8141253"


def test_practitioner_is_hcperson_without_national_identity_number() -> None:
    root = build_apprec(make_apprec())

    person = get(root, "ar:Receiver/ar:HCP/ar:Inst/ar:HCPerson", NS)
    assert person.findtext(AR + "Name") == "Test Testsen"
    assert person.findtext(AR + "Id") == "12345"
    assert attrs(get(person, AR + "TypeId")) == {"V": "HPR", "DN": "HPR-nummer"}
    assert b"01017012345" not in etree.tostring(root)


def test_enh_only_sender_is_identified_by_organisation_number() -> None:
    nav = Organisation("NAV", (Ident("974760924", "ENH"),))
    root = build_apprec(make_apprec(sender=nav))

    inst = get(root, "ar:Sender/ar:HCP/ar:Inst", NS)
    assert local_names(inst) == ["Name", "Id", "TypeId"]
    assert inst.findtext(AR + "Id") == "974760924"
    assert attrs(get(inst, AR + "TypeId")) == {
        "V": "ENH",
        "DN": "Organisasjonsnummeret i Enhetsregister",
    }


def test_status_avvist_carries_the_t02_error() -> None:
    error = AppRecError(T02.code, T02.text, T02.code_system)
    root = build_apprec(make_apprec(AppRecStatus.AVVIST, (error,)))

    assert attrs(get(root, AR + "Status")) == {"V": "2", "DN": "Avvist"}
    errors = root.findall(AR + "Error")
    assert [attrs(e) for e in errors] == [
        {"V": "T02", "S": APPREC_ERROR_CODE_SYSTEM, "DN": "XML validerer ikke"}
    ]
    assert local_names(root)[-3:] == ["Status", "Error", "OriginalMsgId"]


def test_status_3_carries_per_bill_errors_with_ot() -> None:
    errors = (
        AppRecError("07", "Feilbruk av kveldstakst", "2.16.578.1.12.4.1.1.8223", ot="93495"),
        AppRecError("16", "Gammel takst brukt", "2.16.578.1.12.4.1.1.8223", ot="93498"),
    )
    root = build_apprec(make_apprec(AppRecStatus.OK_FEIL_I_DELMELDING, errors))

    assert attrs(get(root, AR + "Status")) == {"V": "3", "DN": "OK, feil i delmelding"}
    assert [(e.get("V"), e.get("OT")) for e in root.findall(AR + "Error")] == [
        ("07", "93495"),
        ("16", "93498"),
    ]


@pytest.mark.parametrize("code_system", ["", "2.16.", ".1", "1..2", "2.16.578.x", " 1"])
def test_error_code_system_must_be_an_oid(code_system: str) -> None:
    with pytest.raises(ValueError, match="OID"):
        AppRecError("X99", "Annen feil", code_system)


def test_error_code_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        AppRecError(" ", "Annen feil")


def test_status_and_errors_must_agree() -> None:
    error = AppRecError("X99", "Annen feil", APPREC_ERROR_CODE_SYSTEM)
    with pytest.raises(ValueError, match="OK"):
        make_apprec(AppRecStatus.OK, (error,))
    with pytest.raises(ValueError, match="AVVIST"):
        make_apprec(AppRecStatus.AVVIST, ())
    with pytest.raises(ValueError, match="OK_FEIL_I_DELMELDING"):
        make_apprec(AppRecStatus.OK_FEIL_I_DELMELDING, ())


def test_aware_times_are_written_in_norwegian_local_time() -> None:
    assert format_datetime(datetime(2024, 7, 1, 10, 0, 0, 500, tzinfo=UTC)) == "2024-07-01T12:00:00"
    assert format_datetime(datetime(2024, 1, 1, 10, 0, tzinfo=UTC)) == "2024-01-01T11:00:00"


def test_characters_xml_cannot_carry_are_replaced() -> None:
    assert xml_safe("a\x00b\x1fc\ufffe\ud800 æøå <&>") == "a\ufffdb\ufffdc\ufffd\ufffd æøå <&>"
    error = AppRecError("X99", "Feil i felt \x07 <RegningNr> & «æøå»", APPREC_ERROR_CODE_SYSTEM)
    root = build_apprec(make_apprec(AppRecStatus.AVVIST, (error,)))

    reparsed = etree.fromstring(etree.tostring(root))
    assert get(reparsed, AR + "Error").get("DN") == "Feil i felt \ufffd <RegningNr> & «æøå»"


def test_msghead_carrier_has_the_nhn_shape() -> None:
    apprec = build_apprec(make_apprec())
    msghead = wrap_in_msghead(
        apprec,
        msg_id="9a1f0c2e-1111-4000-8000-000000000002",
        gen_date=datetime(2024, 3, 1, 12, 30, 46),
        sender=HELFO,
        receiver=SPEARE,
    )

    assert msghead.tag == MH + "MsgHead"
    assert local_names(msghead) == ["MsgInfo", "Document"]
    info = get(msghead, MH + "MsgInfo")
    assert local_names(info) == ["Type", "MIGversion", "GenDate", "MsgId", "Sender", "Receiver"]
    assert attrs(get(info, MH + "Type")) == {"V": "APPREC", "DN": "Applikasjonskvittering"}
    assert info.findtext(MH + "MIGversion") == "v1.2 2006-05-24"
    assert info.findtext(MH + "GenDate") == "2024-03-01T12:30:46"
    sender = get(info, "mh:Sender/mh:Organisation", NS)
    assert sender.findtext(MH + "OrganisationName") == "Helfo"
    idents = sender.findall(MH + "Ident")
    assert [(i.findtext(MH + "Id"), attrs(get(i, MH + "TypeId"))) for i in idents] == [
        ("79768", {"V": "HER", "DN": "HER-id", "S": "2.16.578.1.12.4.1.1.9051"}),
        (
            "889640782",
            {
                "V": "ENH",
                "DN": "Organisasjonsnummeret i Enhetsregister",
                "S": "2.16.578.1.12.4.1.1.9051",
            },
        ),
    ]
    receiver = get(info, "mh:Receiver/mh:Organisation", NS)
    professional = get(receiver, MH + "HealthcareProfessional")
    assert professional.findtext("mh:Ident/mh:Id", namespaces=NS) == "12345"  # no FNR
    ref_doc = get(msghead, "mh:Document/mh:RefDoc", NS)
    assert local_names(ref_doc) == ["MsgType", "MimeType", "Content"]
    assert attrs(get(ref_doc, MH + "MsgType")) == {"V": "XML", "DN": "XML-instans"}
    assert ref_doc.findtext(MH + "MimeType") == "text/xml"
    carried = get(ref_doc, MH + "Content")[0]
    assert etree.tostring(carried) == etree.tostring(apprec)
    assert carried is not apprec and apprec.getparent() is None  # caller's element untouched


def test_wrap_refuses_other_elements_and_organisations_without_ids() -> None:
    when = datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="AppRec"):
        wrap_in_msghead(
            etree.Element("AppRec"), msg_id="m", gen_date=when, sender=HELFO, receiver=SPEARE
        )
    with pytest.raises(ValueError, match="no identifier"):
        wrap_in_msghead(
            build_apprec(make_apprec()),
            msg_id="m",
            gen_date=when,
            sender=HELFO,
            receiver=Organisation("Ukjent", ()),
        )


def test_apprec_from_msghead_returns_the_carried_apprec() -> None:
    msghead = wrap_in_msghead(
        build_apprec(make_apprec()),
        msg_id="m",
        gen_date=datetime(2024, 1, 1),
        sender=HELFO,
        receiver=SPEARE,
    )
    data = etree.tostring(msghead, xml_declaration=True, encoding="UTF-8")

    assert apprec_from_msghead(data).findtext(AR + "Id") == make_apprec().id
    assert apprec_from_msghead(msghead).tag == AR + "AppRec"


def test_apprec_from_msghead_refuses_dtds_and_other_documents() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE MsgHead [<!ENTITY x "boom">]>'
        b'<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">&x;</MsgHead>'
    )
    with pytest.raises(NotXml, match="DTD"):
        apprec_from_msghead(evil)
    with pytest.raises(ValueError, match="not a MsgHead"):
        apprec_from_msghead(b"<AppRec/>")
    with pytest.raises(ValueError, match="found 0"):
        apprec_from_msghead(b'<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24"/>')


# --- bare AppRec, versions 1.0 and 1.1 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "namespace", "mig"),
    [
        (AppRecVersion.V1_0, "http://www.kith.no/xmlstds/apprec/2004-11-21", "1.0 2004-11-21"),
        (AppRecVersion.V1_1, "http://www.kith.no/xmlstds/apprec/2012-02-15", "v1.1 2012-02-15"),
    ],
)
def test_a_bare_apprec_is_written_in_the_version_asked_for(
    version: AppRecVersion, namespace: str, mig: str
) -> None:
    error = AppRecError("9001", "Duplikat", "2.25.1", "93495")
    apprec = replace(make_apprec(AppRecStatus.OK_FEIL_I_DELMELDING, (error,)), version=version)
    data = serialize_apprec(apprec)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<AppRec xmlns=")
    root = etree.fromstring(data)
    assert root.tag == f"{{{namespace}}}AppRec" and root.nsmap == {None: namespace}
    assert root.findtext(f"{{{namespace}}}MIGversion") == mig
    assert all(e.tag.startswith(f"{{{namespace}}}") for e in root.iter())
    (element,) = root.findall(f"{{{namespace}}}Error")
    assert sorted(element.items()) == [
        ("DN", "Duplikat"),
        ("OT", "93495"),
        ("S", "2.25.1"),
        ("V", "9001"),
    ]
    assert AppRecVersion.of_namespace(namespace) is version
    assert serialize_apprec(build_apprec(apprec)) == data


def test_the_default_version_is_1_0_and_unknown_namespaces_are_refused() -> None:
    assert make_apprec().version is AppRecVersion.V1_0
    with pytest.raises(ValueError, match="not an AppRec namespace"):
        AppRecVersion.of_namespace(MSGHEAD_NS)
    with pytest.raises(ValueError, match="not an AppRec element"):
        serialize_apprec(etree.Element(f"{{{MSGHEAD_NS}}}MsgHead"))


def test_a_1_1_apprec_still_travels_in_the_msghead_carrier_when_a_partner_asks() -> None:
    apprec = build_apprec(replace(make_apprec(), version=AppRecVersion.V1_1))
    carrier = wrap_in_msghead(
        apprec, msg_id="m", gen_date=datetime(2024, 3, 1), sender=HELFO, receiver=SPEARE
    )
    carried = apprec_from_msghead(etree.tostring(carrier))
    assert carried.tag == f"{{{AppRecVersion.V1_1.namespace}}}AppRec"


def test_an_error_is_complete_with_code_system_text_and_ot() -> None:
    assert AppRecError("9001", "Duplikat", "2.25.1", "93495").complete
    assert not AppRecError("9001", "Duplikat", None, "93495").complete
    assert not AppRecError("9001", "Duplikat", "2.25.1", None).complete
    assert not AppRecError("9001", "Duplikat", "2.25.1", " ").complete
    assert not AppRecError("9001", " ", "2.25.1", "93495").complete
