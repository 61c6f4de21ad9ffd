"""Every AppRec we build, and its signed MsgHead carrier, validates against the official XSDs.

The schemas are read from ``../shared/standards`` (``standards`` fixture) and never copied into the
project. MsgHead's ``RefDoc/Content`` is ``processContents="strict"``, so the carrier is checked
against an in-memory schema that imports xmldsig, MsgHead v1.2 and AppRec v1.0 together.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.claims.model import Code, HealthcareProfessional, Ident, Organisation
from gateway.errors import RECEIPTS, ReplyChannel
from gateway.receipts.apprec import (
    APPREC_NS,
    DSIG_NS,
    MSGHEAD_NS,
    AppRec,
    AppRecError,
    AppRecStatus,
    AppRecVersion,
    apprec_from_msghead,
    build_apprec,
    wrap_in_msghead,
)
from gateway.receipts.keys import generate_dev_credentials
from gateway.security.xmldsig import Signer, serialize, verify
from gateway.validation.safe_xml import parse_xml

pytestmark = pytest.mark.conformance

DS = f"{{{DSIG_NS}}}"
REAL_SIGNED_SAMPLE = "bkm-2006-12-20/samples/2023_08_29T12_56_58_328.p7m.deenveloped.ungz"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(no_network=True, resolve_entities=False)


@functools.cache
def apprec_schema(standards: Path, version: AppRecVersion = AppRecVersion.V1_0) -> etree.XMLSchema:
    """The official AppRec schema of ``version``, loaded from its file (1.1 imports kith.xsd
    beside it)."""
    path = standards / f"apprec-v{version.value}" / f"AppRec-v{version.value}.xsd"
    return etree.XMLSchema(etree.parse(str(path), parser=_parser()))


@functools.cache
def carrier_schema(standards: Path) -> etree.XMLSchema:
    """xmldsig first, so MsgHead's relative import of it finds the namespace already loaded."""
    imports = [
        (DSIG_NS, standards / "msghead-v1.2" / "xmldsig-core-schema.xsd"),
        (MSGHEAD_NS, standards / "msghead-v1.2" / "MsgHead-v1_2.xsd"),
        (APPREC_NS, standards / "apprec-v1.0" / "AppRec-v1.0.xsd"),
    ]
    lines = [
        f'  <xs:import namespace="{ns}" schemaLocation="{path.resolve().as_uri()}"/>'
        for ns, path in imports
    ]
    wrapper = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">\n'
        + "\n".join(lines)
        + "\n</xs:schema>"
    )
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser=_parser()))


def assert_valid(schema: etree.XMLSchema, element: etree._Element) -> None:
    # Validate what a receiver parses, not our in-memory tree.
    document = etree.fromstring(serialize(element), parser=_parser())
    if not schema.validate(document):
        pytest.fail(str(schema.error_log))


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    directory = tmp_path_factory.mktemp("conformance-keys")
    key, cert = directory / "key.pem", directory / "cert.pem"
    generate_dev_credentials(key, cert, common_name="gateway", organisation="Helfo test")
    return Signer.from_files(key, cert)


HELFO = Organisation("Helfo", (Ident("79768", "HER"), Ident("889640782", "ENH")))
PRACTITIONER = HealthcareProfessional(
    type=Code("LE", text="Lege"),
    family_name="Ødegård",
    given_name="Åse Ærlig",
    idents=(Ident("9144900", "HPR"), Ident("123456", "HER"), Ident("01017012345", "FNR")),
)
CLINIC = Organisation(
    "Vassenden legekontor & co <AS>",
    (Ident("974793539", "ENH"), Ident("8141253", "HER"), Ident("R-1", "RSH")),
    PRACTITIONER,
)
ENH_ONLY = Organisation("NAV", (Ident("974760924", "ENH"),))
APPREC_ERRORS = tuple(
    AppRecError(rc.code, rc.text, rc.code_system)
    for rc in RECEIPTS.values()
    if rc.channel is ReplyChannel.APPREC
)


def make_apprec(
    status: AppRecStatus,
    errors: tuple[AppRecError, ...],
    sender: Organisation = HELFO,
    receiver: Organisation = CLINIC,
) -> AppRec:
    return AppRec(
        id="5f0c8d1e-0000-4000-8000-000000000001",
        gen_date=datetime(2024, 3, 1, 12, 30, 45, 123456),
        sender=sender,
        receiver=receiver,
        status=status,
        errors=errors,
        original_msg_type=Code("POM", text="Poliklinisk oppgjørsmelding"),
        original_issue_date=datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
        original_msg_id="e10c4758-c559-4b54-8427-fb97e89c99bb",
        software_version="0.1.0",
    )


CASES = {
    "ok": make_apprec(AppRecStatus.OK, ()),
    "avvist-t02": make_apprec(AppRecStatus.AVVIST, APPREC_ERRORS[:1]),
    "avvist-all-codes": make_apprec(AppRecStatus.AVVIST, APPREC_ERRORS),
    "per-bill": make_apprec(
        AppRecStatus.OK_FEIL_I_DELMELDING,
        tuple(
            AppRecError(f"{n:02d}", f"Feil nr. {n} i regningen", "2.16.578.1.12.4.1.1.8223", str(n))
            for n in range(1, 60)
        ),
    ),
    "enh-only-sender": make_apprec(AppRecStatus.OK, (), sender=ENH_ONLY),
    "no-software": dataclasses.replace(
        make_apprec(AppRecStatus.OK, ()), software_name=None, software_version=None
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_built_apprec_validates_against_the_official_xsd(standards: Path, name: str) -> None:
    assert_valid(apprec_schema(standards), build_apprec(CASES[name]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_signed_carrier_validates_against_the_official_xsds(
    standards: Path, signer: Signer, name: str
) -> None:
    apprec = CASES[name]
    msghead = wrap_in_msghead(
        build_apprec(apprec),
        msg_id="9a1f0c2e-1111-4000-8000-000000000002",
        gen_date=apprec.gen_date,
        sender=apprec.sender,
        receiver=apprec.receiver,
    )
    signed = serialize(signer.sign(msghead))

    assert_valid(carrier_schema(standards), parse_xml(signed))
    verified = verify(signed, signer.cert_pem)
    assert_valid(apprec_schema(standards), apprec_from_msghead(verified))


def test_hcperson_is_present_in_the_validated_apprec(standards: Path) -> None:
    element = build_apprec(CASES["ok"])
    assert_valid(apprec_schema(standards), element)
    person = element.find(f"{{{APPREC_NS}}}Receiver//{{{APPREC_NS}}}HCPerson")
    assert person is not None
    assert person.findtext(f"{{{APPREC_NS}}}Name") == "Åse Ærlig Ødegård"


@pytest.mark.parametrize(
    "sample", ["example-ok.xml", "example-avvist.xml", "example-ok-feil-i-delmelding.xml"]
)
def test_the_schema_as_loaded_accepts_the_official_samples(standards: Path, sample: str) -> None:
    path = standards / "apprec-v1.0" / "samples" / sample
    apprec_schema(standards).assertValid(etree.parse(str(path), parser=_parser()))


def test_our_signature_has_the_shape_of_the_real_signed_msghead(
    standards: Path, signer: Signer
) -> None:
    real = parse_xml((standards / REAL_SIGNED_SAMPLE).read_bytes())
    ours = signer.sign(
        wrap_in_msghead(
            build_apprec(CASES["ok"]),
            msg_id="9a1f0c2e-1111-4000-8000-000000000002",
            gen_date=datetime(2024, 3, 1, 12, 30, 46),
            sender=HELFO,
            receiver=CLINIC,
        )
    )

    def shape(root: etree._Element) -> list[tuple[str, str | None]]:
        signature = root[len(root) - 1]
        assert signature.tag == DS + "Signature"
        info = signature.find(DS + "SignedInfo")
        assert info is not None
        return [
            (etree.QName(e).localname, e.get("Algorithm") or e.get("URI"))
            for e in info.iter()
            if isinstance(e.tag, str)
        ]

    # Same algorithms and reference; we also name the C14N transform explicitly (allowed, and
    # what the XML-DSig default for URI="" is anyway).
    explicit_c14n = ("Transform", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    assert [s for s in shape(ours) if s != explicit_c14n] == shape(real)
    assert real[len(real) - 1].find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate") is not None


def test_verify_accepts_the_real_signed_msghead(standards: Path) -> None:
    data = (standards / REAL_SIGNED_SAMPLE).read_bytes()
    cert_b64 = parse_xml(data).findtext(f".//{DS}X509Certificate") or ""
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    pem = cert.public_bytes(Encoding.PEM)

    verified = verify(data, pem, at=datetime(2023, 8, 29, 10, 57, tzinfo=UTC))
    assert verified.findtext(f".//{{{MSGHEAD_NS}}}MsgId") == "e10c4758-c559-4b54-8427-fb97e89c99bb"


# --- property-based: whatever goes in, the AppRec validates ---------------------------------

# Norwegian letters, XML specials, whitespace, control characters and anything else.
_awkward = st.text(
    alphabet=st.one_of(
        st.sampled_from("æøåÆØÅéü<>&'\"\t\n\r ;#%]]>\x00\x07\x1b\ufffe\ufeff\ud800"),
        st.characters(),
    ),
    max_size=40,
)
_ids = st.one_of(
    st.uuids().map(str),
    st.text(alphabet=string.ascii_letters + string.digits + "-_. :/{}", max_size=30),
    _awkward,
)
_oids = st.lists(st.integers(0, 99999), min_size=1, max_size=12).map(
    lambda parts: ".".join(map(str, parts))
)
_org_idents = st.lists(
    st.builds(Ident, _ids, st.sampled_from(["HER", "ENH", "RSH", "XYZ", "her", "Ø"])),
    min_size=1,
    max_size=4,
)
_professionals = st.builds(
    HealthcareProfessional,
    type=st.none() | st.builds(Code, _ids, st.none(), st.none() | _awkward),
    family_name=st.none() | _awkward,
    given_name=st.none() | _awkward,
    idents=st.lists(
        st.builds(Ident, _ids, st.sampled_from(["HPR", "HER", "FNR", "DNR", "ANNET"])),
        max_size=3,
    ).map(tuple),
)
_organisations = st.builds(
    Organisation,
    name=_awkward,
    idents=_org_idents.map(tuple),
    professional=st.none() | _professionals,
)
_errors = st.builds(
    AppRecError,
    code=_awkward.filter(str.strip),
    text=_awkward,
    code_system=st.none() | _oids,
    ot=st.none() | _ids,
)
_times = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.none()
) | st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def _apprecs(draw: st.DrawFn) -> AppRec:
    status = draw(st.sampled_from(AppRecStatus))
    errors = () if status is AppRecStatus.OK else tuple(draw(st.lists(_errors, min_size=1)))
    return AppRec(
        id=draw(_ids),
        gen_date=draw(_times),
        sender=draw(_organisations),
        receiver=draw(_organisations),
        status=status,
        errors=errors,
        original_msg_type=draw(st.builds(Code, _ids, st.none() | _oids, st.none() | _awkward)),
        original_issue_date=draw(_times),
        original_msg_id=draw(_ids),
        software_name=draw(st.none() | _awkward),
        software_version=draw(st.none() | _awkward),
    )


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(apprec=_apprecs())
def test_any_apprec_validates_officially(standards: Path, apprec: AppRec) -> None:
    element = build_apprec(apprec)
    assert_valid(apprec_schema(standards), element)
    msghead = wrap_in_msghead(
        element,
        msg_id=apprec.id,
        gen_date=apprec.gen_date,
        sender=apprec.sender,
        receiver=apprec.receiver,
    )
    assert_valid(carrier_schema(standards), msghead)


@settings(max_examples=40, deadline=None)
@given(apprec=_apprecs())
def test_any_signed_carrier_validates_and_verifies(
    standards: Path, signer: Signer, apprec: AppRec
) -> None:
    msghead = wrap_in_msghead(
        build_apprec(apprec),
        msg_id=apprec.id,
        gen_date=apprec.gen_date,
        sender=apprec.sender,
        receiver=apprec.receiver,
    )
    signed = serialize(signer.sign(msghead))
    assert_valid(carrier_schema(standards), parse_xml(signed))
    verified = verify(signed, signer.cert_pem)
    assert etree.tostring(verified, method="c14n") == etree.tostring(msghead, method="c14n")


def test_carrier_schema_checks_the_content_strictly(standards: Path) -> None:
    schema = carrier_schema(standards)
    msghead = wrap_in_msghead(
        build_apprec(CASES["ok"]),
        msg_id="m",
        gen_date=datetime(2024, 3, 1),
        sender=HELFO,
        receiver=CLINIC,
    )
    content = msghead.find(
        f"{{{MSGHEAD_NS}}}Document/{{{MSGHEAD_NS}}}RefDoc/{{{MSGHEAD_NS}}}Content"
    )
    assert content is not None
    apprec = content[0]
    status = apprec.find(f"{{{APPREC_NS}}}Status")
    assert status is not None
    apprec.remove(status)
    assert not schema.validate(etree.fromstring(serialize(msghead)))  # AppRec checked inside

    content.replace(apprec, etree.Element("{urn:unknown}Payload"))
    assert not schema.validate(etree.fromstring(serialize(msghead)))  # strict: unknown refused
