"""The schema catalog: project schemas, reports, unknown namespaces, official overrides."""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import ConfigurationError, NotXml
from gateway.validation import PROJECT_SCHEMAS_DIR, SchemaCatalog, SchemaProblem, parse_xml

MH = "http://www.kith.no/xmlstds/msghead/2006-05-24"
BKM = "http://www.kith.no/xmlstds/bkm/2006-12-20"
APPREC = "http://www.kith.no/xmlstds/apprec/2004-11-21"
DS = "http://www.w3.org/2000/09/xmldsig#"
EB = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"

BKM_SAMPLE = "bkm-2006-12-20/samples/2023_08_29T12_56_58_328.p7m.deenveloped.ungz"

REGNING = """
      <Enkeltregning>
        <Guid>{{04db7c38-3a4c-43ca-92eb-{index:012d}}}</Guid>
        <BetaltEgenandel erBetalt="true" korrigering="false"/>
        <Kreditering>false</Kreditering>
        <RegningNr>{index}</RegningNr>
        <DatoTid>2023-06-05T00:00:00</DatoTid>
        <Patient>
          <Ident>
            <Id>01010112345</Id>
            <TypeId V="FNR" S="2.16.578.1.12.4.1.1.8116" DN="Fødselsnummer"/>
          </Ident>
        </Patient>
        <Behandling>
          <Diagnose V="F321" S="2.16.578.1.12.4.1.1.7110" DN="Moderat depressiv episode"/>
          <Takst>
            <Verdi U="NOK" V="375.00"/>
            <Kode>201b</Kode>
            <Antall>1</Antall>
          </Takst>
          <SumKrav><Refusjon U="NOK" V="375.00"/></SumKrav>
        </Behandling>
      </Enkeltregning>"""


def claim_message(regninger: int = 1) -> bytes:
    """A small, valid MsgHead carrying a BehandlerKrav with ``regninger`` bills."""
    bills = "".join(REGNING.format(index=i + 1) for i in range(regninger))
    total = f"{375 * regninger}.00"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<MsgHead xmlns="{MH}">
  <MsgInfo>
    <Type V="POM" DN="Poliklinisk oppgjørsmelding"/>
    <MIGversion>v1.2 2006-05-24</MIGversion>
    <GenDate>2023-08-29T10:56:50</GenDate>
    <MsgId>e10c4758-c559-4b54-8427-fb97e89c99bb</MsgId>
    <Sender><Organisation>
      <OrganisationName>Speare AS</OrganisationName>
      <Ident><Id>8141253</Id><TypeId V="HER" S="2.16.578.1.12.4.1.1.9051"/></Ident>
    </Organisation></Sender>
    <Receiver><Organisation>
      <OrganisationName>Helfo</OrganisationName>
      <Ident><Id>79768</Id><TypeId V="HER" S="2.16.578.1.12.4.1.1.9051"/></Ident>
    </Organisation></Receiver>
  </MsgInfo>
  <Document>
    <RefDoc>
      <MsgType V="XML" DN="XML-instans"/>
      <MimeType>text/xml</MimeType>
      <Description>BehandlerKrav</Description>
      <Content>
    <BehandlerKrav xmlns="{BKM}" navnEPJ="Test" versjonEPJ="1">
      <Konto/>{bills}
      <Krav>
        <AntallRegninger>{regninger}</AntallRegninger>
        <SumKravSamlet U="NOK" V="{total}"/>
      </Krav>
    </BehandlerKrav>
      </Content>
    </RefDoc>
  </Document>
</MsgHead>
""".encode()


@pytest.fixture(scope="module")
def catalog() -> SchemaCatalog:
    return SchemaCatalog.default()


# --- the project's schemas -------------------------------------------------------------------


def test_project_catalog_knows_the_standards(catalog: SchemaCatalog) -> None:
    assert {MH, BKM, APPREC, DS, EB, SOAP} <= catalog.namespaces
    assert catalog.source_of(BKM) == PROJECT_SCHEMAS_DIR / "bkm-2006-12-20.xsd"
    with pytest.raises(KeyError):
        catalog.source_of("urn:nothing")


def test_every_project_schema_starts_with_its_own_comment() -> None:
    for path in sorted(PROJECT_SCHEMAS_DIR.glob("*.xsd")):
        head = path.read_text(encoding="utf-8")[:600]
        assert "gateway:" in head and "own" in head, path.name


def test_generated_claim_validates(catalog: SchemaCatalog) -> None:
    report = catalog.validate_bytes(claim_message(3))
    assert report.valid, report.summary()
    assert (report.namespace, report.root) == (MH, "MsgHead")
    assert report.summary().endswith("valid")


def test_real_bkm_sample_validates(standards: Path, catalog: SchemaCatalog) -> None:
    report = catalog.validate_bytes((standards / BKM_SAMPLE).read_bytes())
    assert report.valid, report.summary()


def test_broken_sample_names_line_path_and_reason(standards: Path, catalog: SchemaCatalog) -> None:
    data = (standards / BKM_SAMPLE).read_bytes()
    broken = data.replace(b"<Antall>1</Antall>", b"<Antall>mange</Antall>", 1)
    report = catalog.validate_bytes(broken)
    assert not report.valid
    (problem,) = report.problems
    line = data[: data.index(b"<Antall>")].count(b"\n") + 1
    assert problem.line == line
    assert problem.path == (
        "/mh:MsgHead/mh:Document/mh:RefDoc/mh:Content/bkm:BehandlerKrav"
        "/bkm:Enkeltregning[1]/bkm:Behandling/bkm:Takst/bkm:Antall"
    )
    assert "mange" in problem.reason and "AntallType" in problem.reason
    assert f"line {line}" in report.summary()


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (b"<Kreditering>false</Kreditering>", b"", "bkm:RegningNr"),
        (b'V="375.00"/>\n            <Kode>', b'V="375.001"/>\n            <Kode>', "bkm:Verdi"),
        (b"<Kode>201b</Kode>", b"<Kode></Kode>", "bkm:Kode"),
        (b"<Antall>1</Antall>", b"<Antall>1000</Antall>", "bkm:Antall"),
        (b' erBetalt="true"', b"", "bkm:BetaltEgenandel"),
        (b"<MIGversion>v1.2 2006-05-24", b"<MIGversion>v1.3", "mh:MIGversion"),
    ],
)
def test_claim_violations(catalog: SchemaCatalog, old: bytes, new: bytes, where: str) -> None:
    data = claim_message()
    assert old in data
    report = catalog.validate_bytes(data.replace(old, new, 1))
    assert not report.valid
    assert report.problems[0].path.endswith(where), report.summary()


def test_report_to_dict_is_json(catalog: SchemaCatalog) -> None:
    report = catalog.validate_bytes(claim_message().replace(b"<Antall>1<", b"<Antall>x<", 1))
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["valid"] is False
    assert payload["root"] == "MsgHead"
    assert set(payload["problems"][0]) == {"line", "path", "reason"}
    assert str(SchemaProblem(None, "/a", "r")) == "line ?, /a: r"


def test_identity_numbers_are_not_echoed(catalog: SchemaCatalog) -> None:
    data = claim_message().replace(
        b"<DatoTid>2023-06-05T00:00:00</DatoTid>", b"<DatoTid>01010112345</DatoTid>", 1
    )
    report = catalog.validate_bytes(data)
    assert not report.valid
    assert "01010112345" not in report.summary()


def test_subtree_is_validated_on_its_own(catalog: SchemaCatalog) -> None:
    root = parse_xml(claim_message().replace(b"<Antall>1<", b"<Antall>0<", 1))
    (krav,) = root.iter(f"{{{BKM}}}BehandlerKrav")
    report = catalog.validate(krav)
    assert (report.namespace, report.root) == (BKM, "BehandlerKrav")
    assert report.problems[0].path.startswith("/bkm:BehandlerKrav/bkm:Enkeltregning")
    assert krav.getparent() is not None  # the caller's tree is untouched


def test_apprec_validates(catalog: SchemaCatalog) -> None:
    apprec = f"""<AppRec xmlns="{APPREC}">
  <MsgType V="APPREC"/><MIGversion>1.0 2004-11-21</MIGversion>
  <GenDate>2024-01-01T12:00:00</GenDate><Id>1</Id>
  <Sender><HCP><Inst><Name>Helfo</Name><Id>79768</Id><TypeId V="HER"/></Inst></HCP></Sender>
  <Receiver><HCP><Inst><Name>Speare AS</Name></Inst></HCP></Receiver>
  <Status V="2" DN="Avvist"/>
  <Error V="T02" S="2.16.578.1.12.4.1.1.8221" DN="XML validerer ikke mot skjema"/>
  <OriginalMsgId><MsgType V="POM"/><IssueDate>2024-01-01T11:00:00</IssueDate><Id>x</Id>
  </OriginalMsgId>
</AppRec>""".encode()
    assert catalog.validate_bytes(apprec).valid
    assert not catalog.validate_bytes(apprec.replace(b'S="2.16', b'S="x2.16')).valid


# --- unknown namespaces and non-XML ----------------------------------------------------------


def test_unknown_namespace(catalog: SchemaCatalog) -> None:
    report = catalog.validate_bytes(b'<Foo xmlns="urn:example:foo"><bar/></Foo>')
    assert not report.valid
    (problem,) = report.problems
    assert "unknown namespace" in problem.reason
    assert problem.path == "/Foo"
    assert report.namespace == "urn:example:foo"


def test_no_namespace(catalog: SchemaCatalog) -> None:
    report = catalog.validate_bytes(b"<MsgHead/>")
    assert not report.valid
    assert "unknown namespace" in report.problems[0].reason


def test_not_xml_raises(catalog: SchemaCatalog) -> None:
    with pytest.raises(NotXml):
        catalog.validate_bytes(b"<MsgHead")
    with pytest.raises(NotXml):
        catalog.validate_bytes(claim_message(), max_bytes=100)


# --- extra directories -----------------------------------------------------------------------

LOOSE_BKM = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{BKM}"
           elementFormDefault="qualified">
  <xs:element name="BehandlerKrav">
    <xs:complexType>
      <xs:sequence><xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:anyAttribute processContents="skip"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

TEXT_SIGNATURE = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{DS}">
  <xs:element name="Signature" type="xs:string"/>
  <xs:element name="Reference"/>
</xs:schema>
"""


def test_extra_dir_takes_precedence(tmp_path: Path, catalog: SchemaCatalog) -> None:
    nested = tmp_path / "ops" / "bkm"
    nested.mkdir(parents=True)
    (nested / "loose.xsd").write_text(LOOSE_BKM, encoding="utf-8")
    overridden = SchemaCatalog.default(extra_dirs=[tmp_path / "ops"])
    assert overridden.source_of(BKM) == (nested / "loose.xsd").resolve()
    assert overridden.source_of(MH) == catalog.source_of(MH)
    data = claim_message().replace(b"<Kreditering>false</Kreditering>", b"", 1)
    assert not catalog.validate_bytes(data).valid
    assert overridden.validate_bytes(data).valid


def test_earlier_extra_dir_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a.xsd").write_text(LOOSE_BKM, encoding="utf-8")
    (second / "b.xsd").write_text(LOOSE_BKM, encoding="utf-8")
    assert SchemaCatalog.default([first, second]).source_of(BKM).parent == first.resolve()
    assert SchemaCatalog.default([second, first]).source_of(BKM).parent == second.resolve()


def test_chosen_namespace_wins_over_sibling_imports(tmp_path: Path, catalog: SchemaCatalog) -> None:
    # msghead-v1.2.xsd imports its sibling xmldsig-core.xsd; the catalog's choice must win.
    (tmp_path / "sig.xsd").write_text(TEXT_SIGNATURE, encoding="utf-8")
    overridden = SchemaCatalog.default([tmp_path])
    signed = claim_message().replace(
        b"</Document>", f'</Document><ds:Signature xmlns:ds="{DS}">text</ds:Signature>'.encode()
    )
    assert not catalog.validate_bytes(signed).valid
    report = overridden.validate_bytes(signed)
    assert report.valid, report.summary()


def test_missing_extra_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        SchemaCatalog.default([tmp_path / "absent"])


def test_broken_xsd_in_extra_dir(tmp_path: Path) -> None:
    (tmp_path / "broken.xsd").write_text("<xs:schema", encoding="utf-8")
    with pytest.raises(ConfigurationError):
        SchemaCatalog.default([tmp_path])


def test_remote_import_of_unknown_namespace_is_refused(tmp_path: Path) -> None:
    (tmp_path / "remote.xsd").write_text(
        """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x">
  <xs:import namespace="urn:y" schemaLocation="http://127.0.0.1:9/y.xsd"/>
</xs:schema>""",
        encoding="utf-8",
    )
    catalog = SchemaCatalog.default([tmp_path])
    with pytest.raises(ConfigurationError, match="urn:y"):
        catalog.compile()


def test_uncompilable_schema(tmp_path: Path) -> None:
    (tmp_path / "bad.xsd").write_text(
        f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{BKM}">
  <xs:element name="BehandlerKrav" type="xs:noSuchType"/>
</xs:schema>""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError):
        SchemaCatalog.default([tmp_path]).validate_bytes(claim_message())


def test_explicit_sources_must_match_namespace() -> None:
    with pytest.raises(ConfigurationError):
        SchemaCatalog({MH: PROJECT_SCHEMAS_DIR / "bkm-2006-12-20.xsd"})


# --- concurrency and speed -------------------------------------------------------------------


def test_concurrent_first_use_and_validation() -> None:
    catalog = SchemaCatalog.default()
    good, bad = claim_message(), claim_message().replace(b"<Antall>1<", b"<Antall>x<", 1)
    outcomes: list[tuple[bool, bool]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                outcomes.append(
                    (catalog.validate_bytes(good).valid, catalog.validate_bytes(bad).valid)
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert set(outcomes) == {(True, False)}


def test_validation_is_fast(catalog: SchemaCatalog) -> None:
    data = claim_message(20)
    assert 15_000 < len(data) < 30_000
    root = parse_xml(data)
    assert catalog.validate(root).valid
    timings = []
    for _ in range(200):
        started = time.perf_counter()
        catalog.validate(root)
        timings.append(time.perf_counter() - started)
    # Typically well under 0.2 ms; the bound leaves room for slow CI machines.
    assert statistics.median(timings) < 0.001


def test_validate_rejects_non_elements(catalog: SchemaCatalog) -> None:
    report = catalog.validate(etree.Comment("x"))
    assert not report.valid
