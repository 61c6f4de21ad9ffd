"""Realistic, deterministic claim messages for tests, the fixtures corpus and the benchmark.

Shipped in the package on purpose (like ``structlog.testing``); nothing here is used by the daemon.

- ``msghead_with_bkm`` / ``bkm_element``: serialise model values to a MsgHead v1.2 with an inline
  BehandlerKrav, in the element order of the official schemas, so that parsing the bytes back
  with ``parse_msghead`` + ``parse_behandlerkrav`` gives equal values.
- ``make_claim`` / ``make_bill``: plausible bills per practitioner kind from a seeded
  ``random.Random`` (same seed, same claim), with consistent sums.
- ``make_fnr`` / ``fnr_is_valid``: Norwegian national identity numbers with correct mod-11
  control digits. By default *synthetic* (Tenor convention: month + 80), so no generated number
  can belong to a real person.

Values that the XML cannot carry (time zones on model datetimes, a code system on a KITH CS
value, NaN amounts, empty required lists) raise ``ValueError`` rather than produce a document
that would not round-trip or validate.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal, cast

from lxml import etree

from gateway.claims.bkm import BKM_NS
from gateway.claims.model import (
    BehandlerKrav,
    Behandling,
    Code,
    Enkeltregning,
    HealthcareProfessional,
    Ident,
    MsgHead,
    Organisation,
    Takst,
)
from gateway.claims.msghead import MSGHEAD_NS

__all__ = [
    "MIG_VERSION",
    "Practitioner",
    "bkm_element",
    "default_receiver",
    "default_sender",
    "fnr_is_valid",
    "make_bill",
    "make_claim",
    "make_fnr",
    "msghead_with_bkm",
]

Practitioner = Literal["tannlege", "lege", "psykolog", "lab"]
PRACTITIONERS: tuple[Practitioner, ...] = ("tannlege", "lege", "psykolog", "lab")

MIG_VERSION = "v1.2 2006-05-24"

# --- Code systems and texts -----------------------------------------------------------------------

OID_ID_TYPES_ORG = "2.16.578.1.12.4.1.1.9051"  # KITH 9051: identifier types for organisations
OID_ID_TYPES_PERSON = "2.16.578.1.12.4.1.1.8116"  # KITH 8116: identifier types for persons
OID_ICD10 = "2.16.578.1.12.4.1.1.7110"
OID_ICPC2 = "2.16.578.1.12.4.1.1.7170"

_ORG_ID_TEXT = {"HER": "HER-id", "ENH": "Organisasjonsnummeret i Enhetsregister"}
_PERSON_ID_TEXT = {
    "FNR": "Fødselsnummer",
    "DNR": "D-nummer",
    "HNR": "H-nummer",
    "HPR": "HPR-nummer",
}
_PROCESSING_STATUS_TEXT = {"P": "Produksjon", "D": "Debugging", "T": "Opplæring"}

POM = Code("POM", text="Poliklinisk oppgjørsmelding")  # as in the real sample
LOM = Code("LOM", text="Legeoppgjørsmelding")  # as in the AppRec v1.0 sample

FRIKORT = Code("F", text="Frikort")  # kodeverk 7461, as in the real sample
BARN_UNDER_16 = Code("B", text="Barn under 16 år")  # kodeverk 7461

# --- Tariffs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rate:
    refusjon: Decimal  # what Helfo pays per unit normally
    honorar: Decimal  # what Helfo pays per unit when an egenandel fritak applies
    per_tooth: bool = False


def _rate(refusjon: str, honorar: str | None = None, *, per_tooth: bool = False) -> _Rate:
    return _Rate(Decimal(refusjon), Decimal(honorar or refusjon), per_tooth)


# Copied from ../shared/reference/tariffs-dental.csv (refusjonstakst, honorartakst; the
# 2022-09-01 row where there is one, else 2020-01-01). Codes marked ILLUSTRATIVE have no amount
# in the reference; their amounts are made up and only keep the sums plausible.
DENTAL: dict[str, _Rate] = {
    "1": _rate("245", "575"),
    "2": _rate("370", "770"),
    "4": _rate("130", "235"),
    "5": _rate("255", "435"),
    "6": _rate("60", "115"),
    "101": _rate("500", "910"),
    "201": _rate("550", "665", per_tooth=True),
    "202": _rate("920", "1105", per_tooth=True),
    "203": _rate("1150", "1395", per_tooth=True),
    "304": _rate("2800", "5365", per_tooth=True),
    "802": _rate("25", "45"),
    "501": _rate("480", "900"),  # ILLUSTRATIVE
    "502": _rate("480", "900"),  # ILLUSTRATIVE
    "423": _rate("1200", "2000"),  # ILLUSTRATIVE
}

# Copied from ../shared/reference/tariffs-physician.csv (refusjon, honorar; Fastlegetariffen
# 2023-2024, 2ad/2ak/2ae from the ~2021-22 Spesialisttariffen rows).
PHYSICIAN: dict[str, _Rate] = {
    "1ad": _rate("19", "80"),
    "1ak": _rate("47", "106"),
    "1bd": _rate("72", "72"),
    "2ad": _rate("15", "175"),
    "2ak": _rate("48", "328"),
    "2ae": _rate("15", "175"),
    "2cd": _rate("100", "110"),  # ILLUSTRATIVE: no amount in the reference
    "701a": _rate("11", "72"),
    "701c": _rate("24", "24"),
    "705k": _rate("51", "51"),
    "706f": _rate("76", "76"),
    "706h": _rate("38", "38"),
}

# 201b at 375.00 as in the real sample message; 12 is ILLUSTRATIVE.
PSYCHOLOGIST: dict[str, _Rate] = {
    "201b": _rate("375.00"),
    "12": _rate("420.00"),  # ILLUSTRATIVE
}

# NLK category rates from ../shared/reference/nlk-rates.csv (2022, SUS list v1.7). The NPU codes
# are plausible analysis codes; which category each belongs to is ILLUSTRATIVE, not the
# official NLK assignment.
LAB: dict[str, _Rate] = {
    "NPU02319": _rate("11.89"),  # KF1
    "NPU03429": _rate("11.89"),  # KF1
    "NPU03230": _rate("11.89"),  # KF1
    "NPU18016": _rate("11.89"),  # KF1
    "NPU01370": _rate("11.89"),  # KF1
    "NPU01349": _rate("22.21"),  # KF2
    "NPU19748": _rate("22.21"),  # KF2
    "NPU27300": _rate("40.89"),  # KF3
    "NPU03577": _rate("40.89"),  # KF3
}

_TARIFFS: dict[str, dict[str, _Rate]] = {
    "tannlege": DENTAL,
    "lege": PHYSICIAN,
    "psykolog": PSYCHOLOGIST,
    "lab": LAB,
}

# Typical takst combinations for one visit: (kode, min antall, max antall). For per-tooth
# takster the antall is the number of teeth.
_Visit = tuple[tuple[str, int, int], ...]
_VISITS: dict[str, tuple[_Visit, ...]] = {
    "tannlege": (
        (("1", 1, 1), ("802", 1, 4)),
        (("6", 1, 1), ("201", 1, 2)),
        (("6", 1, 1), ("202", 1, 2)),
        (("6", 1, 1), ("203", 1, 1)),
        (("1", 1, 1), ("101", 1, 1)),
        (("501", 1, 2), ("502", 1, 1)),
        (("6", 1, 1), ("304", 1, 1)),
        (("5", 1, 1),),
        (("4", 1, 1),),
        (("2", 1, 1), ("423", 1, 1)),
    ),
    "lege": (
        (("2ad", 1, 1),),
        (("2ad", 1, 1), ("2cd", 1, 2)),
        (("1ad", 1, 1),),
        (("1bd", 1, 1),),
        (("2ad", 1, 1), ("701a", 1, 1), ("705k", 1, 1)),
        (("2ad", 1, 1), ("701a", 1, 1), ("706f", 1, 1), ("701c", 1, 1)),
        (("2ak", 1, 1),),
        (("1ak", 1, 1),),
        (("2ae", 1, 1),),
        (("2ad", 1, 1), ("706h", 1, 1)),
    ),
    "psykolog": ((("201b", 1, 1),),) * 4 + ((("12", 1, 1),),),
    "lab": (),  # drawn from LAB directly
}

_ICPC2_LEGE = (
    Code("R74", OID_ICPC2, "Akutt øvre luftveisinfeksjon"),
    Code("L03", OID_ICPC2, "Korsryggsymptomer/plager"),
    Code("K86", OID_ICPC2, "Hypertensjon ukomplisert"),
    Code("T90", OID_ICPC2, "Diabetes type 2"),
    Code("P76", OID_ICPC2, "Depressiv lidelse"),
    Code("A97", OID_ICPC2, "Ingen sykdom"),
)
_ICD10_PSYKOLOG = (
    Code("F321", OID_ICD10, "Moderat depressiv episode"),
    Code("F431", OID_ICD10, "Posttraumatisk stresslidelse [PTSD]"),
    Code("F411", OID_ICD10, "Generalisert angstlidelse"),
    Code("F401", OID_ICD10, "Sosiale fobier"),
)
_ICPC2_HENVISNING = (
    Code("P76", OID_ICPC2, "Depressiv lidelse"),
    Code("P74", OID_ICPC2, "Angstlidelse"),
    Code("P82", OID_ICPC2, "Posttraumatisk stresslidelse"),
    Code("P99", OID_ICPC2, "Psykisk lidelse IKA"),
)
_TEETH = tuple(f"{quadrant}{tooth}" for quadrant in range(1, 5) for tooth in range(1, 9))

# --- Organisations --------------------------------------------------------------------------------


def default_sender(
    her_id: str = "8141253",
    *,
    name: str = "Speare AS",
    enh: str = "993954896",
    professional: HealthcareProfessional | None = None,
) -> Organisation:
    """A behandler organisation with HER and ENH ids (defaults: the sender of the real sample)."""
    return Organisation(name, (Ident(her_id, "HER"), Ident(enh, "ENH")), professional)


def default_receiver(her_id: str = "79768") -> Organisation:
    """A HELFO-like receiver with HER 79768 and ENH 889640782, as in the real sample."""
    return Organisation("Helfo", (Ident(her_id, "HER"), Ident("889640782", "ENH")))


# --- Fødselsnummer --------------------------------------------------------------------------------

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_SYNTHETIC_MONTH_OFFSET = 80  # Tenor test persons (Skatteetaten): month + 80


def _control_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    control = (11 - remainder) % 11
    return None if control == 10 else control


def _with_controls(nine: str) -> str | None:
    k1 = _control_digit(nine, _K1_WEIGHTS)
    if k1 is None:
        return None
    k2 = _control_digit(nine + str(k1), _K2_WEIGHTS)
    return None if k2 is None else f"{nine}{k1}{k2}"


def _individual_ranges(year: int) -> tuple[tuple[int, int], ...]:
    """Individnummer ranges that encode ``year``'s century."""
    if 1854 <= year <= 1899:
        return ((500, 749),)
    if 1900 <= year <= 1939:
        return ((0, 499),)
    if 1940 <= year <= 1999:
        return ((0, 499), (900, 999))
    if 2000 <= year <= 2039:
        return ((500, 999),)
    raise ValueError("a fødselsnummer can only encode birth years 1854-2039")


def _centuries(individual: int, yy: int) -> list[int]:
    """Birth years an individnummer and two-digit year can stand for."""
    years = []
    if individual <= 499:
        years.append(1900 + yy)
    if 500 <= individual <= 749 and yy >= 54:
        years.append(1800 + yy)
    if individual >= 500 and yy <= 39:
        years.append(2000 + yy)
    if individual >= 900 and yy >= 40:
        years.append(1900 + yy)
    return years


def make_fnr(rng: random.Random, birth_date: date, female: bool, *, synthetic: bool = True) -> str:
    """A fødselsnummer with valid control digits for ``birth_date`` and sex.

    ``synthetic`` (the default) adds 80 to the month, the Tenor convention for test persons: such
    a number cannot belong to a real person. ``synthetic=False`` gives the ordinary form, which
    may collide with a real person's number; use it only where a rule must see a plain date.
    """
    ranges = _individual_ranges(birth_date.year)
    month = birth_date.month + (_SYNTHETIC_MONTH_OFFSET if synthetic else 0)
    prefix = f"{birth_date.day:02d}{month:02d}{birth_date.year % 100:02d}"
    parity = 0 if female else 1  # the third individual digit is even for women
    candidates = [i for lo, hi in ranges for i in range(lo + (lo % 2 != parity), hi + 1, 2)]
    for _ in range(64):  # about 83 % of candidates have valid controls; 64 misses never happen
        fnr = _with_controls(f"{prefix}{rng.choice(candidates):03d}")
        if fnr is not None:
            return fnr
    for individual in candidates:  # pragma: no cover - deterministic fallback
        fnr = _with_controls(f"{prefix}{individual:03d}")
        if fnr is not None:
            return fnr
    raise ValueError("no valid fødselsnummer for this date")  # pragma: no cover


def fnr_is_valid(s: str) -> bool:
    """Whether ``s`` is a well-formed fødselsnummer (ordinary or Tenor synthetic).

    Checks: 11 ASCII digits, both mod-11 control digits, and a real birth date in a century
    the individnummer allows. D- and H-numbers are not accepted.
    """
    if len(s) != 11 or not s.isascii() or not s.isdigit():
        return False
    if _with_controls(s[:9]) != s:
        return False
    day, month, yy, individual = int(s[0:2]), int(s[2:4]), int(s[4:6]), int(s[6:9])
    if month > _SYNTHETIC_MONTH_OFFSET:
        month -= _SYNTHETIC_MONTH_OFFSET
    for year in _centuries(individual, yy):
        try:
            date(year, month, day)
        except ValueError:
            continue
        return True
    return False


# --- Factories ------------------------------------------------------------------------------------


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _age_range(practitioner: str) -> tuple[int, int]:
    return {"psykolog": (18, 80), "tannlege": (3, 95)}.get(practitioner, (0, 95))


def _birth_date(rng: random.Random, practitioner: str, on: date) -> date:
    lo, hi = _age_range(practitioner)
    born = on - timedelta(days=rng.randint(lo * 366, hi * 365))
    return max(born, date(1854, 1, 1))


def _visit(rng: random.Random, practitioner: str) -> list[tuple[str, int]]:
    if practitioner == "lab":
        codes = rng.sample(sorted(LAB), rng.randint(1, 6))
        return [(kode, 1) for kode in codes]
    return [(kode, rng.randint(lo, hi)) for kode, lo, hi in rng.choice(_VISITS[practitioner])]


def make_bill(
    *,
    rng: random.Random,
    practitioner: str,
    dato_tid: datetime,
    regning_nr: str,
    patient: Ident | None = None,
    kreditering: bool = False,
) -> Enkeltregning:
    """One plausible bill for ``practitioner`` (``tannlege``, ``lege``, ``psykolog``, ``lab``).

    Each takst ``Verdi`` is the refusjon per unit, or the honorar when an egenandel fritak
    (``KodeEgenandel``) applies; ``SumKrav/Refusjon`` is the sum of ``Verdi × Antall``.
    A new synthetic patient is made unless ``patient`` is given.
    """
    if practitioner not in _TARIFFS:
        raise ValueError(f"unknown practitioner kind {practitioner!r}")
    tariff = _TARIFFS[practitioner]
    guid = _uuid(rng)
    child = False
    if patient is None:
        born = _birth_date(rng, practitioner, dato_tid.date())
        on = dato_tid.date()
        child = on.year - born.year - ((on.month, on.day) < (born.month, born.day)) < 16
        patient = Ident(make_fnr(rng, born, female=rng.random() < 0.5), "FNR")

    kode_egenandel: Code | None = None
    if practitioner != "tannlege":
        if child and practitioner in ("lege", "lab"):
            kode_egenandel = BARN_UNDER_16
        elif rng.random() < 0.15:
            kode_egenandel = FRIKORT

    takster: list[Takst] = []
    tenner: list[str] = []
    for kode, antall in _visit(rng, practitioner):
        rate = tariff[kode]
        verdi = rate.refusjon if kode_egenandel is None else rate.honorar
        takster.append(Takst(kode, verdi.quantize(Decimal("0.01")), antall))
        if rate.per_tooth:
            tenner.extend(t for t in rng.sample(_TEETH, antall) if t not in tenner)

    diagnoser: tuple[Code, ...] = ()
    henvisnings_dato: date | None = None
    henvisnings_id: str | None = None
    henvisnings_diagnose: Code | None = None
    relatert_behandler: str | None = None
    if practitioner == "lege":
        diagnoser = (rng.choice(_ICPC2_LEGE),)
    elif practitioner == "psykolog":
        diagnoser = (rng.choice(_ICD10_PSYKOLOG),)
        henvisnings_dato = dato_tid.date() - timedelta(days=rng.randint(7, 900))
        henvisnings_id = str(rng.randint(100, 99999))
        henvisnings_diagnose = rng.choice(_ICPC2_HENVISNING)
        relatert_behandler = str(rng.randint(1_000_000, 9_999_999))  # the referrer's HPR
    elif practitioner == "lab":
        if rng.random() < 0.7:
            diagnoser = (rng.choice(_ICPC2_LEGE),)
        relatert_behandler = str(rng.randint(1_000_000, 9_999_999))  # the requester's HPR

    return Enkeltregning(
        guid=guid,
        betalt_egenandel=kode_egenandel is None and rng.random() < 0.95,
        egenandel_korrigering=False,
        kreditering=kreditering,
        regning_nr=regning_nr,
        dato_tid=dato_tid,
        patient=patient,
        behandling=Behandling(
            kode_egenandel=kode_egenandel,
            diagnoser=diagnoser,
            henvisnings_dato=henvisnings_dato,
            henvisnings_id=henvisnings_id,
            henvisnings_diagnose=henvisnings_diagnose,
            relatert_behandler=relatert_behandler,
            takster=tuple(takster),
            prosedyrekoder=(),
            tenner=tuple(tenner),
            sum_refusjon=sum((t.verdi * t.antall for t in takster), Decimal("0.00")),
        ),
    )


# Minutes a dental takst occupies: first unit, each repetition (as fixtures/tariffs/takster.csv;
# tests/test_tariff_data.py checks that generated bills leave each other this time).
_DENTAL_MINUTES = {"5": (11, 0), "101": (20, 21), "501": (30, 30), "604e": (45, 0)}
_DENTAL_TIME_BASED = ("2", "502", "6")  # a time need without explicit minutes: 1 minute


def _time_need(bill: Enkeltregning) -> int:
    need = 0
    for takst in bill.behandling.takster:
        if takst.kode in _DENTAL_MINUTES:
            first, per_repetition = _DENTAL_MINUTES[takst.kode]
            need += first + (takst.antall - 1) * per_repetition
        elif takst.kode.startswith(_DENTAL_TIME_BASED):
            need += 1
    return need


def _next_slot(rng: random.Random, previous: datetime, *, at_least: int = 0) -> datetime:
    """The next appointment: 15-60 minutes later (never before ``at_least`` minutes, the time
    the previous bill's takster need), within weekday office hours."""
    minutes = rng.choice((15, 20, 30, 45, 60))
    slot = previous + timedelta(minutes=max(minutes, at_least))
    if slot.time() >= time(16, 0):
        slot = datetime.combine(slot.date() + timedelta(days=1), time(8, 0))
    while slot.weekday() >= 5:
        slot += timedelta(days=1)
    return slot


def make_claim(
    *,
    rng: random.Random,
    practitioner: Practitioner,
    bills: int,
    sender: Organisation,
    receiver: Organisation,
    start: datetime,
    first_regning_nr: int | None = None,
    navn_epj: str | None = "Gateway testjournal",
    versjon_epj: str | None = "1.0",
    msg_type: Code | None = None,
) -> tuple[MsgHead, BehandlerKrav]:
    """A MsgHead and a BehandlerKrav of ``bills`` bills, starting at ``start`` (naive local).

    Totals are consistent: ``AntallRegninger`` is the number of bills and ``SumKravSamlet`` the
    sum of their ``SumKrav/Refusjon``. The message type is LOM for ``lege``, else POM.
    """
    if bills < 1:
        raise ValueError("a claim needs at least one bill")
    regning_nr = rng.randint(1000, 89999) if first_regning_nr is None else first_regning_nr
    regninger: list[Enkeltregning] = []
    dato_tid = start
    for i in range(bills):
        if i:
            dato_tid = _next_slot(rng, dato_tid, at_least=_time_need(regninger[-1]))
        regninger.append(
            make_bill(
                rng=rng,
                practitioner=practitioner,
                dato_tid=dato_tid,
                regning_nr=str(regning_nr + i),
            )
        )
    head = MsgHead(
        msg_type=msg_type or (LOM if practitioner == "lege" else POM),
        mig_version=MIG_VERSION,
        gen_date=dato_tid + timedelta(minutes=rng.randint(5, 240), seconds=rng.randint(0, 59)),
        msg_id=_uuid(rng),
        sender=sender,
        receiver=receiver,
        content_description="BehandlerKrav",
    )
    krav = BehandlerKrav(
        navn_epj=navn_epj,
        versjon_epj=versjon_epj,
        regninger=tuple(regninger),
        antall_regninger=len(regninger),
        sum_krav_samlet=sum((r.behandling.sum_refusjon for r in regninger), Decimal("0.00")),
    )
    return head, krav


# --- Serialisation --------------------------------------------------------------------------------


def _default_ns(ns: str) -> Mapping[str, str]:
    # lxml-stubs type nsmap keys as str, but None (the default namespace) is what lxml wants.
    return cast("Mapping[str, str]", {None: ns})


def _mh(name: str) -> str:
    return f"{{{MSGHEAD_NS}}}{name}"


def _bkm(name: str) -> str:
    return f"{{{BKM_NS}}}{name}"


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrs: str | None
) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        raise ValueError("model datetimes are naive Norwegian local time")
    return value.isoformat()


def _amount(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError("amounts must be finite")
    exponent = value.as_tuple().exponent
    # At least two decimals, as senders write them; more only if the value really has them.
    return f"{value:.2f}" if isinstance(exponent, int) and exponent >= -2 else f"{value:f}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _cs(parent: etree._Element, tag: str, code: Code) -> None:
    if code.system is not None:
        raise ValueError(f"{tag} is a KITH CS value and cannot carry a code system")
    _sub(parent, tag, V=code.value, DN=code.text)


def _cv(parent: etree._Element, tag: str, code: Code) -> None:
    _sub(parent, tag, V=code.value, S=code.system, DN=code.text)


def _ident(parent: etree._Element, ns: str, ident: Ident, *, person: bool) -> None:
    texts, oid = (
        (_PERSON_ID_TEXT, OID_ID_TYPES_PERSON) if person else (_ORG_ID_TEXT, OID_ID_TYPES_ORG)
    )
    el = _sub(parent, f"{{{ns}}}Ident")
    _sub(el, f"{{{ns}}}Id", ident.id)
    known = ident.type in texts
    _sub(el, f"{{{ns}}}TypeId", V=ident.type, S=oid if known else None, DN=texts.get(ident.type))


def _organisation(parent: etree._Element, org: Organisation) -> None:
    if not org.idents:
        raise ValueError("an Organisation needs at least one Ident")
    el = _sub(parent, _mh("Organisation"))
    _sub(el, _mh("OrganisationName"), org.name)
    for ident in org.idents:
        _ident(el, MSGHEAD_NS, ident, person=False)
    professional = org.professional
    if professional is not None:
        if not professional.idents:
            raise ValueError("a HealthcareProfessional needs at least one Ident")
        hp = _sub(el, _mh("HealthcareProfessional"))
        if professional.type is not None:
            _cs(hp, _mh("TypeHealthcareProfessional"), professional.type)
        if professional.family_name is not None:
            _sub(hp, _mh("FamilyName"), professional.family_name)
        if professional.given_name is not None:
            _sub(hp, _mh("GivenName"), professional.given_name)
        for ident in professional.idents:
            _ident(hp, MSGHEAD_NS, ident, person=True)


def bkm_element(krav: BehandlerKrav) -> etree._Element:
    """A BehandlerKrav element (BKM 2006-12-20) for ``krav``, in schema element order."""
    if not krav.regninger:
        raise ValueError("a BehandlerKrav needs at least one Enkeltregning")
    root = etree.Element(_bkm("BehandlerKrav"), nsmap=_default_ns(BKM_NS))
    if krav.navn_epj is not None:
        root.set("navnEPJ", krav.navn_epj)
    if krav.versjon_epj is not None:
        root.set("versjonEPJ", krav.versjon_epj)
    for regning in krav.regninger:
        _enkeltregning(root, regning)
    totals = _sub(root, _bkm("Krav"))
    _sub(totals, _bkm("AntallRegninger"), str(krav.antall_regninger))
    _sub(totals, _bkm("SumKravSamlet"), U="NOK", V=_amount(krav.sum_krav_samlet))
    return root


def _enkeltregning(parent: etree._Element, regning: Enkeltregning) -> None:
    el = _sub(parent, _bkm("Enkeltregning"))
    _sub(el, _bkm("Guid"), regning.guid)
    _sub(
        el,
        _bkm("BetaltEgenandel"),
        erBetalt=_bool(regning.betalt_egenandel),
        korrigering=_bool(regning.egenandel_korrigering),
    )
    _sub(el, _bkm("Kreditering"), _bool(regning.kreditering))
    _sub(el, _bkm("RegningNr"), regning.regning_nr)
    _sub(el, _bkm("DatoTid"), _datetime(regning.dato_tid))
    _ident(_sub(el, _bkm("Patient")), BKM_NS, regning.patient, person=True)
    b = regning.behandling
    if not b.takster:
        raise ValueError("a Behandling needs at least one Takst")
    beh = _sub(el, _bkm("Behandling"))
    if b.kode_egenandel is not None:
        _cs(beh, _bkm("KodeEgenandel"), b.kode_egenandel)
    for diagnose in b.diagnoser:
        _cv(beh, _bkm("Diagnose"), diagnose)
    if b.henvisnings_dato is not None:
        _sub(beh, _bkm("HenvisningsDato"), b.henvisnings_dato.isoformat())
    if b.henvisnings_id is not None:
        _sub(beh, _bkm("HenvisningsId"), b.henvisnings_id)
    if b.henvisnings_diagnose is not None:
        _cv(beh, _bkm("HenvisningsDiagnose"), b.henvisnings_diagnose)
    if b.relatert_behandler is not None:
        _sub(beh, _bkm("RelatertBehandler"), b.relatert_behandler)
    for takst in b.takster:
        t = _sub(beh, _bkm("Takst"))
        _sub(t, _bkm("Verdi"), U="NOK", V=_amount(takst.verdi))
        _sub(t, _bkm("Kode"), takst.kode)
        _sub(t, _bkm("Antall"), str(takst.antall))
    for kode in b.prosedyrekoder:
        _cv(beh, _bkm("Prosedyrekode"), kode)
    for tann in b.tenner:
        _sub(beh, _bkm("Tann"), tann)
    _sub(_sub(beh, _bkm("SumKrav")), _bkm("Refusjon"), U="NOK", V=_amount(b.sum_refusjon))


def msghead_with_bkm(
    head: MsgHead,
    krav: BehandlerKrav,
    *,
    process_status: str = "P",
    pretty_print: bool = False,
) -> bytes:
    """A MsgHead v1.2 document carrying ``krav`` inline, as UTF-8 bytes with XML declaration."""
    root = etree.Element(_mh("MsgHead"), nsmap=_default_ns(MSGHEAD_NS))
    info = _sub(root, _mh("MsgInfo"))
    _cs(info, _mh("Type"), head.msg_type)
    _sub(info, _mh("MIGversion"), head.mig_version)
    _sub(info, _mh("GenDate"), _datetime(head.gen_date))
    _sub(info, _mh("MsgId"), head.msg_id)
    _sub(
        info,
        _mh("ProcessingStatus"),
        V=process_status,
        DN=_PROCESSING_STATUS_TEXT.get(process_status),
    )
    _organisation(_sub(info, _mh("Sender")), head.sender)
    _organisation(_sub(info, _mh("Receiver")), head.receiver)
    ref_doc = _sub(_sub(root, _mh("Document")), _mh("RefDoc"))
    _sub(ref_doc, _mh("MsgType"), V="XML", DN="XML-instans")
    _sub(ref_doc, _mh("MimeType"), "text/xml")
    if head.content_description is not None:
        _sub(ref_doc, _mh("Description"), head.content_description)
    _sub(ref_doc, _mh("Content")).append(bkm_element(krav))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=pretty_print)
