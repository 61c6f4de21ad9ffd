"""The claim generator in gateway.testing.claims: realistic, deterministic, consistent."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from lxml import etree

from gateway.claims import (
    BKM_NS,
    MSGHEAD_NS,
    BehandlerKrav,
    Code,
    HealthcareProfessional,
    Ident,
    MsgHead,
    Organisation,
    parse_behandlerkrav,
    parse_msghead,
)
from gateway.testing.claims import (
    DENTAL,
    LAB,
    PHYSICIAN,
    PRACTITIONERS,
    PSYCHOLOGIST,
    Practitioner,
    bkm_element,
    default_receiver,
    default_sender,
    fnr_is_valid,
    make_bill,
    make_claim,
    make_fnr,
    msghead_with_bkm,
)

START = datetime(2024, 3, 4, 9, 0)  # a Monday


def _claim(
    practitioner: Practitioner = "lege", *, seed: int = 1, bills: int = 5
) -> tuple[MsgHead, BehandlerKrav]:
    return make_claim(
        rng=random.Random(seed),
        practitioner=practitioner,
        bills=bills,
        sender=default_sender(),
        receiver=default_receiver(),
        start=START,
    )


# --- Factories -----------------------------------------------------------------------------------


@pytest.mark.parametrize("practitioner", PRACTITIONERS)
def test_same_seed_same_message(practitioner: Practitioner) -> None:
    first = msghead_with_bkm(*_claim(practitioner, seed=42))
    assert first == msghead_with_bkm(*_claim(practitioner, seed=42))
    assert first != msghead_with_bkm(*_claim(practitioner, seed=43))


@pytest.mark.parametrize("practitioner", PRACTITIONERS)
def test_totals_are_consistent(practitioner: Practitioner) -> None:
    for seed in range(30):
        _, krav = _claim(practitioner, seed=seed, bills=1 + seed % 9)
        assert krav.antall_regninger == len(krav.regninger) == 1 + seed % 9
        assert krav.sum_krav_samlet == sum(r.behandling.sum_refusjon for r in krav.regninger)
        for regning in krav.regninger:
            b = regning.behandling
            assert b.sum_refusjon == sum(t.verdi * t.antall for t in b.takster)
            assert all(t.verdi == t.verdi.quantize(Decimal("0.01")) for t in b.takster)


@pytest.mark.parametrize(
    ("practitioner", "tariff"),
    [("tannlege", DENTAL), ("lege", PHYSICIAN), ("psykolog", PSYCHOLOGIST), ("lab", LAB)],
)
def test_takster_come_from_the_practitioners_tariff(
    practitioner: Practitioner, tariff: dict[str, object]
) -> None:
    used: set[str] = set()
    for seed in range(40):
        _, krav = _claim(practitioner, seed=seed)
        for regning in krav.regninger:
            used.update(t.kode for t in regning.behandling.takster)
    assert used <= set(tariff)
    assert len(used) >= min(4, len(tariff))


def test_verdi_is_refusjon_or_honorar_with_fritak() -> None:
    seen_fritak = seen_plain = False
    for seed in range(40):
        _, krav = _claim("lege", seed=seed)
        for regning in krav.regninger:
            b = regning.behandling
            for takst in b.takster:
                rate = PHYSICIAN[takst.kode]
                if b.kode_egenandel is None:
                    seen_plain = True
                    assert takst.verdi == rate.refusjon
                else:
                    seen_fritak = True
                    assert b.kode_egenandel.value in ("F", "B")
                    assert takst.verdi == rate.honorar
                    assert not regning.betalt_egenandel
    assert seen_fritak and seen_plain


def test_dental_tooth_takster_name_teeth() -> None:
    for seed in range(60):
        _, krav = _claim("tannlege", seed=seed)
        for regning in krav.regninger:
            b = regning.behandling
            tooth_units = sum(t.antall for t in b.takster if DENTAL[t.kode].per_tooth)
            assert (tooth_units > 0) == bool(b.tenner)
            for tann in b.tenner:
                assert tann[0] in "1234" and tann[1] in "12345678"
            assert b.kode_egenandel is None and b.diagnoser == ()


def test_psychologist_bills_carry_a_referral() -> None:
    _, krav = _claim("psykolog", seed=3)
    for regning in krav.regninger:
        b = regning.behandling
        assert b.henvisnings_dato is not None and b.henvisnings_dato < regning.dato_tid.date()
        assert b.henvisnings_id and b.relatert_behandler and b.henvisnings_diagnose
        assert b.diagnoser[0].system == "2.16.578.1.12.4.1.1.7110"  # ICD-10


def test_lab_bills_use_nlk_codes() -> None:
    _, krav = _claim("lab", seed=5, bills=10)
    for regning in krav.regninger:
        assert all(t.kode.startswith("NPU") and t.antall == 1 for t in regning.behandling.takster)
        assert regning.behandling.relatert_behandler is not None  # the requester


@pytest.mark.parametrize("practitioner", PRACTITIONERS)
def test_patients_are_synthetic_fnr(practitioner: Practitioner) -> None:
    _, krav = _claim(practitioner, seed=9, bills=20)
    for regning in krav.regninger:
        assert regning.patient.type == "FNR"
        assert fnr_is_valid(regning.patient.id)
        assert int(regning.patient.id[2:4]) > 80  # Tenor: month + 80


def test_bills_are_in_office_hours_in_order() -> None:
    head, krav = _claim("lege", seed=2, bills=60)
    times = [r.dato_tid for r in krav.regninger]
    assert times[0] == START
    assert times == sorted(times)
    for moment in times:
        assert moment.weekday() < 5
        assert time(8, 0) <= moment.time() < time(16, 0)
    assert head.gen_date > times[-1]
    assert [r.regning_nr for r in krav.regninger] == [
        str(int(krav.regninger[0].regning_nr) + i) for i in range(60)
    ]
    assert len({r.guid for r in krav.regninger}) == 60


def test_claim_head() -> None:
    head, _ = _claim("lege")
    assert head.msg_type == Code("LOM", None, "Legeoppgjørsmelding")
    assert _claim("psykolog")[0].msg_type.value == "POM"
    assert head.mig_version == "v1.2 2006-05-24"
    assert head.content_description == "BehandlerKrav"
    assert head.sender == default_sender()
    assert head.receiver == default_receiver()


def test_make_claim_options() -> None:
    head, krav = make_claim(
        rng=random.Random(0),
        practitioner="tannlege",
        bills=2,
        sender=default_sender("123"),
        receiver=default_receiver("456"),
        start=START,
        first_regning_nr=500,
        navn_epj=None,
        versjon_epj=None,
        msg_type=Code("TEST"),
    )
    assert head.msg_type == Code("TEST")
    assert (head.sender.her_id, head.receiver.her_id) == ("123", "456")
    assert [r.regning_nr for r in krav.regninger] == ["500", "501"]
    assert (krav.navn_epj, krav.versjon_epj) == (None, None)


def test_make_claim_needs_bills() -> None:
    with pytest.raises(ValueError, match="at least one bill"):
        _claim(bills=0)


def test_make_bill() -> None:
    patient = Ident("01816063007", "FNR")
    bill = make_bill(
        rng=random.Random(1),
        practitioner="psykolog",
        dato_tid=START,
        regning_nr="77",
        patient=patient,
        kreditering=True,
    )
    assert (bill.patient, bill.regning_nr, bill.dato_tid, bill.kreditering) == (
        patient,
        "77",
        START,
        True,
    )
    with pytest.raises(ValueError, match="unknown practitioner"):
        make_bill(rng=random.Random(1), practitioner="kiropraktor", dato_tid=START, regning_nr="1")


def test_default_organisations() -> None:
    sender = default_sender()
    assert (sender.her_id, sender.ident("ENH")) == ("8141253", "993954896")
    receiver = default_receiver()
    assert (receiver.name, receiver.her_id, receiver.ident("ENH")) == (
        "Helfo",
        "79768",
        "889640782",
    )


# --- Fødselsnummer -------------------------------------------------------------------------------


@pytest.mark.parametrize("fnr", ["15076500565", "21016400952"])  # the real sample's test persons
def test_known_fnr_are_valid(fnr: str) -> None:
    assert fnr_is_valid(fnr)


@pytest.mark.parametrize(
    "fnr",
    [
        "",
        "1507650056",
        "150765005650",
        "15076500566",  # wrong second control digit
        "15076500575",  # wrong first control digit
        "1507650056a",
        "١٥٠٧٦٥٠٠٥٦٥",  # non-ASCII digits
        "55076500565",  # D-number form is not a fødselsnummer
        "00000000000",  # day 0
    ],
)
def test_invalid_fnr(fnr: str) -> None:
    assert not fnr_is_valid(fnr)


def test_make_fnr_examples() -> None:
    rng = random.Random(0)
    assert make_fnr(rng, date(1985, 5, 17), True)[:6] == "178585"
    assert make_fnr(rng, date(1985, 5, 17), False, synthetic=False)[:6] == "170585"
    leap = make_fnr(rng, date(2020, 2, 29), True)
    assert fnr_is_valid(leap) and leap[:6] == "298220"
    with pytest.raises(ValueError, match="1854-2039"):
        make_fnr(rng, date(2040, 1, 1), True)


# --- Serialisation -------------------------------------------------------------------------------


def test_document_shape() -> None:
    head, krav = _claim("psykolog", bills=2)
    xml = msghead_with_bkm(head, krav, process_status="T")
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(xml)
    mh = f"{{{MSGHEAD_NS}}}"
    info = root[0]
    assert [child.tag.removeprefix(mh) for child in info] == [
        "Type",
        "MIGversion",
        "GenDate",
        "MsgId",
        "ProcessingStatus",
        "Sender",
        "Receiver",
    ]
    assert dict(info[4].attrib.items()) == {"V": "T", "DN": "Opplæring"}
    ref_doc = root.find(f"{mh}Document/{mh}RefDoc")
    assert ref_doc is not None
    assert [child.tag.removeprefix(mh) for child in ref_doc] == [
        "MsgType",
        "MimeType",
        "Description",
        "Content",
    ]
    assert dict(ref_doc[0].attrib.items()) == {"V": "XML", "DN": "XML-instans"}
    assert ref_doc[3][0].tag == f"{{{BKM_NS}}}BehandlerKrav"


def test_bkm_element_standalone_round_trip() -> None:
    _, krav = _claim("tannlege", seed=11)
    element = bkm_element(krav)
    assert parse_behandlerkrav(element) == krav
    assert parse_behandlerkrav(etree.fromstring(etree.tostring(element))) == krav


def test_amounts_are_written_with_two_decimals() -> None:
    head, krav = _claim("lab")
    regning = dataclasses.replace(
        krav.regninger[0],
        behandling=dataclasses.replace(krav.regninger[0].behandling, sum_refusjon=Decimal("5")),
    )
    krav = dataclasses.replace(krav, regninger=(regning,), sum_krav_samlet=Decimal("1E+2"))
    root = etree.fromstring(msghead_with_bkm(head, krav))
    values = root.xpath("//b:Refusjon/@V | //b:SumKravSamlet/@V", namespaces={"b": BKM_NS})
    assert values == ["5.00", "100.00"]
    assert parse_behandlerkrav(parse_msghead(root).content) == krav


def test_unrepresentable_values_are_refused() -> None:
    head, krav = _claim("lege")
    aware = dataclasses.replace(head, gen_date=datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        msghead_with_bkm(aware, krav)
    with pytest.raises(ValueError, match="code system"):
        msghead_with_bkm(dataclasses.replace(head, msg_type=Code("POM", "1.2")), krav)
    with pytest.raises(ValueError, match="Ident"):
        msghead_with_bkm(dataclasses.replace(head, sender=Organisation("x", ())), krav)
    professional = HealthcareProfessional(None, None, None, ())
    with pytest.raises(ValueError, match="Ident"):
        msghead_with_bkm(
            dataclasses.replace(head, sender=Organisation("x", (Ident("1", "HER"),), professional)),
            krav,
        )
    with pytest.raises(ValueError, match="finite"):
        msghead_with_bkm(head, dataclasses.replace(krav, sum_krav_samlet=Decimal("NaN")))
    with pytest.raises(ValueError, match="Enkeltregning"):
        bkm_element(dataclasses.replace(krav, regninger=()))
