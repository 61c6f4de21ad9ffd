"""Property tests: the parsers never crash, generated claims round-trip, fnr are well-formed."""

from __future__ import annotations

import copy
import os
import random
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.claims import (
    BKM_NS,
    MSGHEAD_NS,
    BehandlerKrav,
    Behandling,
    Code,
    Enkeltregning,
    HealthcareProfessional,
    Ident,
    MsgHead,
    Organisation,
    Takst,
    parse_behandlerkrav,
    parse_msghead,
)
from gateway.claims.msghead import XMLDSIG_NS
from gateway.errors import SchemaInvalid, UnsupportedMessageType
from gateway.testing.claims import (
    MIG_VERSION,
    PRACTITIONERS,
    Practitioner,
    default_receiver,
    default_sender,
    fnr_is_valid,
    make_claim,
    make_fnr,
    msghead_with_bkm,
)

STANDARDS_DIR = Path(
    os.environ.get(
        "GATEWAY_STANDARDS_DIR", Path(__file__).resolve().parents[2] / "shared/standards"
    )
)
SAMPLE = STANDARDS_DIR / "bkm-2006-12-20/samples/2023_08_29T12_56_58_328.p7m.deenveloped.ungz"
PROPERTY_SETTINGS = settings(
    deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
ELEVEN_DIGITS = re.compile(r"\d{11}")

# --- Shared strategies ---------------------------------------------------------------------------

# Characters XML 1.0 can carry and lxml accepts: no surrogates, controls or non-characters.
XML_CHARS = st.characters(exclude_categories=("Cs", "Cc", "Cn"))
TEXT = st.text(XML_CHARS, max_size=16)


def _trimmed(min_size: int = 0, max_size: int = 16) -> st.SearchStrategy[str]:
    """Strings as the parser returns element text: no surrounding XML whitespace."""
    return (
        st.text(XML_CHARS, max_size=max_size)
        .map(lambda s: s.strip(" "))
        .filter(lambda s: len(s) >= min_size)
    )


def _tokens(min_size: int = 0, max_size: int = 16) -> st.SearchStrategy[str]:
    """xs:token values: single inner spaces, none at the ends."""
    return (
        st.text(XML_CHARS, max_size=max_size)
        .map(lambda s: " ".join(part for part in s.split(" ") if part))
        .filter(lambda s: len(s) >= min_size)
    )


OIDS = st.lists(st.integers(0, 10**6), min_size=1, max_size=8).map(
    lambda parts: ".".join(map(str, parts))
)
AMOUNTS = st.integers(0, 10**12 - 1).map(lambda cents: Decimal(cents).scaleb(-2))
DATETIMES = st.datetimes()  # naive, years 1-9999, with microseconds
CS_CODES = st.builds(Code, value=_tokens(), system=st.none(), text=st.none() | TEXT)
CV_CODES = st.builds(Code, value=_tokens(), system=st.none() | OIDS, text=st.none() | TEXT)


# --- (b) Model strategies, within the constraints of the MsgHead and BKM schemas -----------------


def _idents(min_id_size: int) -> st.SearchStrategy[tuple[Ident, ...]]:
    ident = st.builds(Ident, id=_trimmed(min_id_size), type=_tokens())
    return st.lists(ident, min_size=1, max_size=3).map(tuple)


PROFESSIONALS = st.builds(
    HealthcareProfessional,
    type=st.none() | CS_CODES,
    family_name=st.none() | _trimmed(),
    given_name=st.none() | _trimmed(),
    idents=_idents(0),
)
ORGANISATIONS = st.builds(
    Organisation,
    name=_trimmed(),
    idents=_idents(0),
    professional=st.none() | PROFESSIONALS,
)
HEADS = st.builds(
    MsgHead,
    msg_type=CS_CODES,
    mig_version=st.just(MIG_VERSION),
    gen_date=DATETIMES,
    msg_id=_trimmed(),
    sender=ORGANISATIONS,
    receiver=ORGANISATIONS,
    content_description=st.none() | _trimmed(),
)
TAKSTER = st.builds(Takst, kode=_tokens(1, 20), verdi=AMOUNTS, antall=st.integers(1, 999))
BEHANDLINGER = st.builds(
    Behandling,
    kode_egenandel=st.none() | CS_CODES,
    diagnoser=st.lists(CV_CODES, max_size=2).map(tuple),
    henvisnings_dato=st.none() | st.dates(),
    henvisnings_id=st.none() | _trimmed(),
    henvisnings_diagnose=st.none() | CV_CODES,
    relatert_behandler=st.none() | _trimmed(),
    takster=st.lists(TAKSTER, min_size=1, max_size=3).map(tuple),
    prosedyrekoder=st.lists(CV_CODES, max_size=2).map(tuple),
    tenner=st.lists(_tokens(), max_size=3).map(tuple),
    sum_refusjon=AMOUNTS,
)
REGNINGER = st.builds(
    Enkeltregning,
    guid=_trimmed(1, 64),
    betalt_egenandel=st.booleans(),
    egenandel_korrigering=st.booleans(),
    kreditering=st.booleans(),
    regning_nr=_tokens(1, 35),
    dato_tid=DATETIMES,
    patient=st.builds(Ident, id=_trimmed(1), type=_tokens()),
    behandling=BEHANDLINGER,
)
KRAV = st.builds(
    BehandlerKrav,
    navn_epj=st.none() | TEXT,
    versjon_epj=st.none() | TEXT,
    regninger=st.lists(REGNINGER, min_size=1, max_size=3).map(tuple),
    antall_regninger=st.integers(1, 10**17),
    sum_krav_samlet=AMOUNTS,
)


def _round_trip(head: MsgHead, krav: BehandlerKrav, *, pretty_print: bool) -> None:
    xml = msghead_with_bkm(head, krav, pretty_print=pretty_print)
    document = parse_msghead(etree.fromstring(xml))
    assert document.head == head
    assert parse_behandlerkrav(document.content) == krav


@PROPERTY_SETTINGS
@given(head=HEADS, krav=KRAV, pretty_print=st.booleans())
def test_model_values_round_trip(head: MsgHead, krav: BehandlerKrav, pretty_print: bool) -> None:
    _round_trip(head, krav, pretty_print=pretty_print)


@settings(deadline=None, max_examples=60)
@given(
    seed=st.integers(0, 2**64),
    practitioner=st.sampled_from(PRACTITIONERS),
    bills=st.integers(1, 25),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31)),
)
def test_generated_claims_round_trip(
    seed: int, practitioner: Practitioner, bills: int, start: datetime
) -> None:
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner=practitioner,
        bills=bills,
        sender=default_sender(),
        receiver=default_receiver(),
        start=start,
    )
    _round_trip(head, krav, pretty_print=False)


# --- (a) Robustness: any element tree gives a value or one of the two content errors --------------

TRICKY = (
    "",
    " ",
    "true",
    "false",
    "1",
    "0",
    "+1",
    "-1",
    "007",
    "375.00",
    "375,00",
    ".5",
    "NaN",
    "-Infinity",
    "1E3",
    "1_0",
    "9" * 30,
    "9" * 5000,
    "١٢",
    "POM",
    "FNR",
    "HER",
    "15076500565",
    "2023-08-29T10:56:50",
    "2023-08-29T10:56:50.1234567+02:00",
    "2023-08-29T10:56:50Z",
    "2023-12-31T24:00:00",
    "2023-02-29T10:00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "99999-01-01T00:00:00",
    "2021-03-07",
    "2021-03-07+01:00",
    "2021-13-07",
)
# A small alphabet that still makes near-miss numbers, dates and codes; full Unicode is covered
# by the round-trip tests and would make tree generation slow.
VALUES = st.one_of(
    st.sampled_from(TRICKY), st.text("0123456789+-.:TZ eE,_Vaæø٣\u00a0<&", max_size=12)
)

# The shape of a claim message: element -> children in order (same namespace unless noted).
SKELETON: dict[str, tuple[str, ...]] = {
    "MsgHead": ("MsgInfo", "Document", "Signature"),
    "MsgInfo": ("Type", "MIGversion", "GenDate", "MsgId", "ProcessingStatus", "Sender", "Receiver"),
    "Sender": ("Organisation",),
    "Receiver": ("Organisation",),
    "Organisation": ("OrganisationName", "Ident", "HealthcareProfessional"),
    "HealthcareProfessional": ("TypeHealthcareProfessional", "FamilyName", "GivenName", "Ident"),
    "Ident": ("Id", "TypeId"),
    "Document": ("RefDoc",),
    "RefDoc": ("MsgType", "MimeType", "Description", "Content", "FileReference"),
    "Content": ("BehandlerKrav",),
    "BehandlerKrav": ("Konto", "Enkeltregning", "Krav"),
    "Enkeltregning": (
        "Guid",
        "BetaltEgenandel",
        "Kreditering",
        "RegningNr",
        "DatoTid",
        "Patient",
        "Behandling",
    ),
    "Patient": ("Ident",),
    "Behandling": (
        "KodeEgenandel",
        "Diagnose",
        "HenvisningsDato",
        "HenvisningsId",
        "HenvisningsDiagnose",
        "RelatertBehandler",
        "Takst",
        "Prosedyrekode",
        "Tann",
        "SumKrav",
    ),
    "Takst": ("Verdi", "Kode", "Antall"),
    "SumKrav": ("Refusjon",),
    "Krav": ("AntallRegninger", "SumKravSamlet"),
}
NAMES = sorted({*SKELETON, *(c for cs in SKELETON.values() for c in cs), "X"})
ATTRIBUTES = ("V", "S", "DN", "U", "erBetalt", "korrigering", "navnEPJ", "versjonEPJ")
NAMESPACES = (MSGHEAD_NS, BKM_NS, XMLDSIG_NS, "urn:other", None)


def _qname(ns: str | None, name: str) -> str:
    return name if ns is None else f"{{{ns}}}{name}"


# Valid leaf values, so that generated trees often get deep before something is wrong.
GOOD_TEXT = {
    "MIGversion": MIG_VERSION,
    "GenDate": "2023-08-29T10:56:50",
    "DatoTid": "2023-06-05T09:00:00",
    "HenvisningsDato": "2021-03-07",
    "Kreditering": "false",
    "Antall": "1",
    "AntallRegninger": "2",
}
_CODE = {"V": "X1", "S": "2.16.578.1.12.4.1.1.7110", "DN": "tekst"}
GOOD_ATTRIBUTES = {
    "Type": {"V": "POM", "DN": "Poliklinisk oppgjørsmelding"},
    "TypeId": {"V": "FNR"},
    "BetaltEgenandel": {"erBetalt": "true", "korrigering": "false"},
    "Verdi": {"U": "NOK", "V": "375.00"},
    "Refusjon": {"V": "0.00"},
    "SumKravSamlet": {"V": "375.00"},
    "BehandlerKrav": {"navnEPJ": "EPJ", "versjonEPJ": "1"},
    **{
        name: _CODE
        for name in (
            "KodeEgenandel",
            "Diagnose",
            "HenvisningsDiagnose",
            "Prosedyrekode",
            "TypeHealthcareProfessional",
        )
    },
}


@st.composite
def guided_trees(draw: st.DrawFn) -> etree._Element:
    """Trees shaped like claim messages, with parts missing, repeated, renamed or garbled."""
    # Structure from a seeded Random (cheap); bad values from Hypothesis (shrinkable, tricky).
    # Hypothesis-driven Randoms lean towards 0.0 and the first choice: those are the good ones.
    rnd = draw(st.randoms(use_true_random=False))
    budget = [150]  # elements left; keeps examples small

    def value(good: str) -> str:
        return good if rnd.random() < 0.95 else draw(VALUES)

    def build(name: str, ns: str | None, depth: int) -> etree._Element:
        budget[0] -= 1
        if rnd.random() > 0.97:  # sometimes a wrong name or namespace
            name = rnd.choice(NAMES)
            ns = rnd.choice(NAMESPACES)
        element = etree.Element(_qname(ns, name))
        for attribute, good in GOOD_ATTRIBUTES.get(name, {}).items():
            if rnd.random() < 0.97:
                element.set(attribute, value(good))
        if rnd.random() > 0.97:
            element.set(rnd.choice(ATTRIBUTES), draw(VALUES))
        children = SKELETON.get(name, ())
        if not children or depth > 12 or budget[0] <= 0:
            if rnd.random() < 0.97:
                element.text = value(GOOD_TEXT.get(name, "x1"))
            return element
        for child in children:
            child_ns = {"BehandlerKrav": BKM_NS, "Signature": XMLDSIG_NS}.get(child, ns)
            for _ in range(rnd.choice((1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2))):
                element.append(build(child, child_ns, depth + 1))
        return element

    return build("MsgHead", MSGHEAD_NS, 0)


@st.composite
def random_trees(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    """Arbitrary small trees over the claim vocabulary."""
    element = etree.Element(_qname(draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(NAMES))))
    for attribute in draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=3)):
        element.set(attribute, draw(VALUES))
    if draw(st.booleans()):
        element.text = draw(VALUES)
    if depth < 4:
        for _ in range(draw(st.integers(0, 3))):
            element.append(draw(random_trees(depth + 1)))
    return element


def _base_documents() -> list[bytes]:
    documents = []
    for i, practitioner in enumerate(PRACTITIONERS):
        head, krav = make_claim(
            rng=random.Random(i),
            practitioner=practitioner,
            bills=2,
            sender=default_sender(),
            receiver=default_receiver(),
            start=datetime(2024, 3, 4, 9, 0),
        )
        documents.append(msghead_with_bkm(head, krav))
    if SAMPLE.is_file():
        documents.append(SAMPLE.read_bytes())
    return documents


BASE_DOCUMENTS = _base_documents()
MUTATIONS = st.tuples(
    st.sampled_from(
        ("remove", "text", "attribute", "drop-attribute", "duplicate", "rename", "comment", "child")
    ),
    st.integers(0, 10**6),
    VALUES,
    st.sampled_from(NAMES),
    st.sampled_from(NAMESPACES),
)


@st.composite
def mutated_trees(draw: st.DrawFn) -> etree._Element:
    """A valid claim message (generated or the real sample) with a few random mutations."""
    root = etree.fromstring(draw(st.sampled_from(BASE_DOCUMENTS)))
    for op, index, value, name, ns in draw(st.lists(MUTATIONS, min_size=1, max_size=6)):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        target = elements[index % len(elements)]
        parent = target.getparent()
        if op == "remove" and parent is not None:
            parent.remove(target)
        elif op == "text":
            target.text = value
        elif op == "attribute":
            target.set(draw(st.sampled_from(ATTRIBUTES)), value)
        elif op == "drop-attribute" and target.attrib:
            del target.attrib[sorted(target.attrib)[index % len(target.attrib)]]
        elif op == "duplicate" and parent is not None:
            target.addnext(copy.deepcopy(target))
        elif op == "rename" and isinstance(target.tag, str):
            target.tag = _qname(ns, name)
        elif op == "comment":
            comment = etree.Comment("x")
            comment.tail = value
            target.insert(index % (len(target) + 1), comment)
        elif op == "child":
            target.insert(index % (len(target) + 1), etree.Element(_qname(ns, name)))
    return root


def _check_error(error: SchemaInvalid | UnsupportedMessageType) -> None:
    assert error.detail
    assert not ELEVEN_DIGITS.search(error.detail)
    assert error.location is None or not ELEVEN_DIGITS.search(error.location)


def _check_parsers(root: etree._Element) -> None:
    """Both parsers return values or raise one of the two content errors; nothing else."""
    try:
        document = parse_msghead(root)
    except (SchemaInvalid, UnsupportedMessageType) as error:
        _check_error(error)
    else:
        assert isinstance(document.content, etree._Element)
        try:
            parse_behandlerkrav(document.content)
        except (SchemaInvalid, UnsupportedMessageType) as error:
            _check_error(error)
    for element in root.iter():
        try:
            parse_behandlerkrav(element)
        except (SchemaInvalid, UnsupportedMessageType) as error:
            _check_error(error)


@PROPERTY_SETTINGS
@given(root=guided_trees())
def test_parsers_never_crash_on_claim_shaped_trees(root: etree._Element) -> None:
    _check_parsers(root)


@PROPERTY_SETTINGS
@given(root=random_trees())
def test_parsers_never_crash_on_random_trees(root: etree._Element) -> None:
    _check_parsers(root)


@settings(deadline=None, max_examples=300)
@given(root=mutated_trees())
def test_parsers_never_crash_on_mutated_messages(root: etree._Element) -> None:
    _check_parsers(root)


# --- (c) Fødselsnummer ---------------------------------------------------------------------------

BIRTH_DATES = st.dates(min_value=date(1854, 1, 1), max_value=date(2039, 12, 31))


@settings(deadline=None, max_examples=500)
@given(seed=st.integers(0, 2**64), born=BIRTH_DATES, female=st.booleans(), synthetic=st.booleans())
def test_make_fnr_is_valid_and_encodes_its_inputs(
    seed: int, born: date, female: bool, synthetic: bool
) -> None:
    fnr = make_fnr(random.Random(seed), born, female, synthetic=synthetic)
    assert fnr == make_fnr(random.Random(seed), born, female, synthetic=synthetic)
    assert fnr_is_valid(fnr)
    assert len(fnr) == 11 and fnr.isdigit()
    assert int(fnr[0:2]) == born.day
    assert int(fnr[2:4]) == born.month + (80 if synthetic else 0)
    assert int(fnr[4:6]) == born.year % 100
    individual = int(fnr[6:9])
    assert individual % 2 == (0 if female else 1)
    if born.year < 1900:
        assert 500 <= individual <= 749
    elif born.year < 1940:
        assert individual <= 499
    elif born.year < 2000:
        assert individual <= 499 or individual >= 900
    else:
        assert individual >= 500


@settings(deadline=None, max_examples=300)
@given(
    seed=st.integers(0, 2**64),
    born=BIRTH_DATES,
    position=st.integers(0, 10),
    delta=st.integers(1, 9),
)
def test_any_single_digit_change_is_detected(
    seed: int, born: date, position: int, delta: int
) -> None:
    fnr = make_fnr(random.Random(seed), born, female=seed % 2 == 0)
    digit = (int(fnr[position]) + delta) % 10
    assert not fnr_is_valid(fnr[:position] + str(digit) + fnr[position + 1 :])


# --- Generated documents validate against MsgHead + the project's BKM schema ---------------------

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BKM_XSD = PROJECT_ROOT / "schemas" / "bkm-2006-12-20.xsd"
PROJECT_MSGHEAD_XSD = PROJECT_ROOT / "schemas" / "msghead-v1.2.xsd"


def _combined_schema(msghead_xsd: Path, bkm_xsd: Path) -> etree.XMLSchema:
    """One schema for MsgHead with an inline BehandlerKrav (Content is processContents=strict)."""
    driver = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:import namespace="{MSGHEAD_NS}" schemaLocation="{msghead_xsd.as_uri()}"/>
      <xs:import namespace="{BKM_NS}" schemaLocation="{bkm_xsd.as_uri()}"/>
    </xs:schema>"""
    return etree.XMLSchema(etree.fromstring(driver.encode()))


@pytest.fixture(
    scope="module",
    params=[pytest.param("official", marks=pytest.mark.conformance), "project"],
)
def claim_schema(request: pytest.FixtureRequest) -> etree.XMLSchema:
    """MsgHead (official from ../shared/standards, or the project's rendering) + project BKM."""
    if not BKM_XSD.is_file():
        pytest.skip(f"the project's BKM schema {BKM_XSD} is not written yet")
    if request.param == "official":
        standards: Path = request.getfixturevalue("standards")
        msghead_xsd = standards / "msghead-v1.2" / "MsgHead-v1_2.xsd"
    else:
        msghead_xsd = PROJECT_MSGHEAD_XSD
        if not msghead_xsd.is_file():
            pytest.skip(f"the project's MsgHead schema {msghead_xsd} is not written yet")
    return _combined_schema(msghead_xsd, BKM_XSD)


def _assert_valid(schema: etree.XMLSchema, xml: bytes) -> None:
    document = etree.fromstring(xml)
    if not schema.validate(document):
        errors = [f"{e.line}: {e.message}" for e in schema.error_log]  # type: ignore[attr-defined]
        raise AssertionError("\n".join(errors))


def test_sample_validates(claim_schema: etree.XMLSchema) -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"the real sample {SAMPLE} is not available")
    _assert_valid(claim_schema, SAMPLE.read_bytes())


@pytest.mark.parametrize("practitioner", PRACTITIONERS)
def test_generated_claims_validate(
    claim_schema: etree.XMLSchema, practitioner: Practitioner
) -> None:
    for seed in range(20):
        head, krav = make_claim(
            rng=random.Random(seed),
            practitioner=practitioner,
            bills=1 + seed % 7,
            sender=default_sender(),
            receiver=default_receiver(),
            start=datetime(2024, 3, 4, 9, 0),
        )
        _assert_valid(claim_schema, msghead_with_bkm(head, krav, process_status="T"))


@settings(deadline=None, max_examples=100)
@given(head=HEADS, krav=KRAV)
def test_model_values_validate(
    claim_schema: etree.XMLSchema, head: MsgHead, krav: BehandlerKrav
) -> None:
    _assert_valid(claim_schema, msghead_with_bkm(head, krav))
