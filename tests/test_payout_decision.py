"""The payout decision message (utbetalingsvedtak v1): schema, signature, sums, privacy."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.claims.model import Ident, Organisation
from gateway.errors import SecurityFailure
from gateway.payout.decision import (
    VEDTAK_NS,
    Decision,
    DecisionBill,
    DecisionLine,
    DecisionNote,
    build_decision,
    format_amount,
    patient_reference,
    signed_decision_bytes,
)
from gateway.security.xmldsig import Signer, serialize, verify
from gateway.validation.catalog import SchemaCatalog
from gateway.validation.safe_xml import parse_xml

SECRET = b"test-secret-for-patient-references"
FNR_1 = "01017012345"
FNR_2 = "24128912345"
NS = {"v": VEDTAK_NS}

HELFO = Organisation("HELFO Oppgjør", (Ident("79768", "HER"), Ident("889640782", "ENH")))
PRACTICE = Organisation(
    "Fjordlegene AS & Co <Ålesund>", (Ident("12345", "HER"), Ident("987654321", "ENH"))
)


def _decision(**changes: object) -> Decision:
    bills = (
        DecisionBill(
            regning_nr="R-1",
            guid="6f1c8a52-7b1d-4d5e-9e4b-1b2c3d4e5f60",
            patient_ref=patient_reference(FNR_1, SECRET),
            behandlingsdato=datetime(2026, 11, 2, 9, 30),
            lines=(
                DecisionLine("2ad", 1, Decimal("196.00")),
                DecisionLine("701a", 2, Decimal("61.10")),
            ),
            status="godkjent",
            utbetalt=Decimal("318.20"),
        ),
        DecisionBill(
            regning_nr="R-2",
            guid="0d8e1f2a-3b4c-4d5e-8f9a-0b1c2d3e4f5a",
            patient_ref=patient_reference(FNR_2, SECRET),
            behandlingsdato=datetime(2026, 11, 3, 14, 0, 5),
            lines=(DecisionLine("2cd", 1, Decimal("0.00")),),
            status="avvist",
            utbetalt=Decimal("0.00"),
            notes=(
                DecisionNote(
                    "R-TAKST-17",
                    "Takst 2cd kan ikke kombineres med 2ad samme dag",
                    "Bruk én av takstene; velg den som beskriver konsultasjonen.",
                ),
            ),
        ),
        DecisionBill(
            regning_nr="R-0",
            guid="11111111-2222-4333-8444-555555555555",
            patient_ref=patient_reference(FNR_1, SECRET),
            behandlingsdato=datetime(2026, 10, 30, 8, 0),
            lines=(DecisionLine("2ad", 1, Decimal("-196.00")),),
            status="kreditert",
            utbetalt=Decimal("-196.00"),
            notes=(DecisionNote("KRED", "Kreditering mottatt; tidligere utbetaling trekkes"),),
        ),
    )
    values: dict[str, object] = {
        "vedtak_id": "V-2026-11-23-12345",
        "kjoring": "2026-11-23T16:00",
        "vedtaksdato": date(2026, 11, 23),
        "payer": HELFO,
        "receiver": PRACTICE,
        "account": "12345678903",
        "kid": "1234567890128",
        "bills": bills,
    }
    values.update(changes)
    return Decision(**values)  # type: ignore[arg-type]


def _assert_valid(catalog: SchemaCatalog, element: etree._Element) -> None:
    report = catalog.validate(element)
    assert report.valid, report.summary()


# --- schema ------------------------------------------------------------------------------------


def test_schema_is_in_the_default_catalog(catalog: SchemaCatalog) -> None:
    assert VEDTAK_NS in catalog.namespaces
    assert catalog.source_of(VEDTAK_NS).name == "utbetalingsvedtak-v1.xsd"


def test_decision_validates(catalog: SchemaCatalog) -> None:
    _assert_valid(catalog, build_decision(_decision()))


def test_minimal_decision_validates(catalog: SchemaCatalog) -> None:
    _assert_valid(catalog, build_decision(_decision(account=None, kid=None, bills=())))


def test_schema_rejects_what_the_builder_never_writes(catalog: SchemaCatalog) -> None:
    root = build_decision(_decision())
    root.find("v:Regning/v:Pasientreferanse", NS).text = FNR_1  # type: ignore[union-attr]
    assert not catalog.validate(root).valid
    root = build_decision(_decision())
    root.find("v:Regning/v:Utbetalt", NS).text = "318.205"  # type: ignore[union-attr]
    assert not catalog.validate(root).valid
    root = build_decision(_decision())
    root.find("v:Regning/v:Status", NS).text = "ukjent"  # type: ignore[union-attr]
    assert not catalog.validate(root).valid


def test_signed_decision_validates_and_verifies(catalog: SchemaCatalog, signer: Signer) -> None:
    data = signed_decision_bytes(_decision(), signer)
    root = parse_xml(data)
    assert etree.QName(root[len(root) - 1]).localname == "Signature"
    _assert_valid(catalog, root)
    signed = verify(data, signer.cert_pem)
    assert signed.findtext("v:VedtakId", namespaces=NS) == "V-2026-11-23-12345"
    assert signed.findtext("v:Sum/v:Utbetalt", namespaces=NS) == "122.20"


def test_tampered_decision_fails_verification(signer: Signer) -> None:
    data = signed_decision_bytes(_decision(), signer)
    tampered = data.replace(b"<Utbetalt>318.20</Utbetalt>", b"<Utbetalt>3318.20</Utbetalt>")
    assert tampered != data
    with pytest.raises(SecurityFailure):
        verify(tampered, signer.cert_pem)


# --- content -----------------------------------------------------------------------------------


def test_totals_are_exact_to_the_ore() -> None:
    bills = tuple(
        DecisionBill(
            regning_nr=f"R-{i}",
            guid=f"g-{i}",
            patient_ref=patient_reference(FNR_1, SECRET),
            behandlingsdato=datetime(2026, 11, 1, 8, 0),
            lines=(),
            status="godkjent",
            utbetalt=Decimal("0.10"),
        )
        for i in range(10)
    )
    decision = _decision(bills=bills)
    assert decision.total == Decimal("1.00")  # 0.1 summed ten times as float is 0.9999999999999999
    root = build_decision(decision)
    assert root.findtext("v:Sum/v:Utbetalt", namespaces=NS) == "1.00"
    assert root.findtext("v:Sum/v:AntallRegninger", namespaces=NS) == "10"
    assert _decision().total == Decimal("122.20")


def test_amount_formatting() -> None:
    assert format_amount(Decimal("5")) == "5.00"
    assert format_amount(Decimal("-0.00")) == "0.00"
    assert format_amount(Decimal("-196.1")) == "-196.10"
    assert format_amount(Decimal("1E+3")) == "1000.00"


@pytest.mark.parametrize(
    "amount", [Decimal("1.005"), Decimal("NaN"), Decimal("Infinity"), Decimal("1E+30")]
)
def test_amounts_must_be_whole_ore(amount: Decimal) -> None:
    with pytest.raises(ValueError):
        DecisionLine("2ad", 1, amount)


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        DecisionLine("2ad", 1, 1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "amount"),
    [("avvist", Decimal("1.00")), ("godkjent", Decimal("-1.00")), ("kreditert", Decimal("1.00"))],
)
def test_status_and_amount_must_agree(status: str, amount: Decimal) -> None:
    with pytest.raises(ValueError):
        DecisionBill("R", "G", "0" * 20, datetime(2026, 1, 1), (), status, amount)


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValueError, match="patient_ref"):
        DecisionBill("R", "G", FNR_1, datetime(2026, 1, 1), (), "godkjent", Decimal("1.00"))
    with pytest.raises(ValueError, match="11 digits"):
        _decision(account="1234")
    with pytest.raises(ValueError, match="KID needs an account"):
        _decision(account=None)
    with pytest.raises(ValueError, match="HER or ENH"):
        _decision(receiver=Organisation("X", (Ident("1", "RSH"),)))


def test_output_is_deterministic(signer: Signer) -> None:
    assert serialize(build_decision(_decision())) == serialize(build_decision(_decision()))
    assert signed_decision_bytes(_decision(), signer) == signed_decision_bytes(_decision(), signer)


def test_national_id_never_appears(signer: Signer) -> None:
    for data in (
        serialize(build_decision(_decision())),
        signed_decision_bytes(_decision(), signer),
    ):
        assert FNR_1.encode() not in data
        assert FNR_2.encode() not in data
        assert patient_reference(FNR_1, SECRET).encode() in data


def test_patient_reference_is_stable_and_keyed() -> None:
    ref = patient_reference(FNR_1, SECRET)
    assert len(ref) == 20 and all(c in "0123456789abcdef" for c in ref)
    assert ref == patient_reference(FNR_1, SECRET)
    assert ref != patient_reference(FNR_2, SECRET)
    assert ref != patient_reference(FNR_1, b"another secret")
    with pytest.raises(ValueError):
        patient_reference(FNR_1, b"")


def test_special_characters_round_trip() -> None:
    root = parse_xml(serialize(build_decision(_decision())))
    assert root.findtext("v:Mottaker/v:Navn", namespaces=NS) == "Fjordlegene AS & Co <Ålesund>"


# --- property: every decision the API accepts is schema-valid ----------------------------------

_norwegian = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzæøåÆØÅé 0123456789<>&\"';.,-\t\n"))
    | st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cn")),
    min_size=1,
    max_size=30,
)
_amount = st.decimals(min_value=Decimal("-99999999.99"), max_value=Decimal("99999999.99"), places=2)
_datetimes = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1))


@st.composite
def _bills(draw: st.DrawFn) -> DecisionBill:
    status = draw(st.sampled_from(["godkjent", "avvist", "kreditert", "korrigert"]))
    amount = draw(_amount)
    if status == "avvist":
        amount = Decimal("0.00")
    elif status == "godkjent":
        amount = abs(amount)
    elif status == "kreditert":
        amount = -abs(amount)
    return DecisionBill(
        regning_nr=draw(_norwegian),
        guid=draw(_norwegian),
        patient_ref=patient_reference(draw(st.from_regex(r"[0-9]{11}", fullmatch=True)), SECRET),
        behandlingsdato=draw(_datetimes),
        lines=tuple(
            draw(
                st.lists(
                    st.builds(
                        DecisionLine, _norwegian, st.integers(min_value=1, max_value=999), _amount
                    ),
                    max_size=4,
                )
            )
        ),
        status=status,
        utbetalt=amount,
        notes=tuple(
            draw(
                st.lists(
                    st.builds(DecisionNote, _norwegian, _norwegian, st.none() | _norwegian),
                    max_size=3,
                )
            )
        ),
    )


_organisations = st.builds(
    Organisation,
    _norwegian,
    st.lists(
        st.builds(
            Ident, st.from_regex(r"[0-9]{5,9}", fullmatch=True), st.sampled_from(["HER", "ENH"])
        ),
        min_size=1,
        max_size=2,
    ).map(tuple),
)


@st.composite
def _decisions(draw: st.DrawFn) -> Decision:
    account = draw(st.none() | st.from_regex(r"[0-9]{11}", fullmatch=True))
    kid = (
        None
        if account is None
        else draw(st.none() | st.from_regex(r"[0-9]{1,24}[0-9-]", fullmatch=True))
    )
    return Decision(
        vedtak_id=draw(_norwegian),
        kjoring=draw(_norwegian),
        vedtaksdato=draw(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1))),
        payer=draw(_organisations),
        receiver=draw(_organisations),
        account=account,
        kid=kid,
        bills=tuple(draw(st.lists(_bills(), max_size=5))),
    )


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(decision=_decisions())
def test_random_decisions_are_schema_valid(catalog: SchemaCatalog, decision: Decision) -> None:
    data = serialize(build_decision(decision))
    assert data == serialize(build_decision(decision))
    root = parse_xml(data)
    _assert_valid(catalog, root)
    assert Decimal(root.findtext("v:Sum/v:Utbetalt", namespaces=NS) or "") == decision.total
    paid = [Decimal(el.text or "") for el in root.iterfind("v:Regning/v:Utbetalt", NS)]
    assert paid == [bill.utbetalt for bill in decision.bills]
    assert root.findtext("v:Mottaker/v:Navn", namespaces=NS) == decision.receiver.name


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(decision=_decisions())
def test_random_signed_decisions_validate_and_verify(
    catalog: SchemaCatalog, signer: Signer, decision: Decision
) -> None:
    data = signed_decision_bytes(decision, signer)
    _assert_valid(catalog, parse_xml(data))
    verify(data, signer.cert_pem)
