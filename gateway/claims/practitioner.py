"""Who treated: the kinds of practice KUHR serves, their specialties, and the practitioner's id.

Two words, two meanings:

- a **practice type** (praksistype, ``PRACTICE_TYPES``) says what kind of sender a practice is:
  ``fastlege``, ``legevakt``, ``poliklinikk``, ``rehabiliteringsinstitusjon`` … one per kind of
  sender KUHR receives claims from. The practice register (``gateway.practices``) gives each
  practice its type, its specialties (fagområder) and its municipality.
- a **practitioner type** (``gateway.tariffs.model.PRACTITIONER_TYPES``) names the rule family
  and tariff a bill is checked against: ``lege`` for fastlege, legevakt and spesialistlege
  alike, ``lab`` for the laboratories, ``kjeveortoped`` for a dentist who is an orthodontist.
  ``family_of`` derives it from the practice type and specialties; the rules' ``practitioners``
  and the takst table's ``practitioner`` column use it.

Without a register entry the practitioner type may still come from the MsgHead's
``HealthcareProfessional/TypeHealthcareProfessional`` (KITH code list 9060); the practice type
is then unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.claims.model import MsgHead

__all__ = [
    "EGENANDEL_ONLY",
    "PRACTICE_TYPES",
    "SPECIALTIES",
    "PracticeType",
    "Specialty",
    "family_of",
    "practice_type",
    "practitioner_id",
    "practitioner_type",
    "type_from_professional",
]


@dataclass(frozen=True, slots=True)
class Specialty:
    """A fagområde a practice may be registered with."""

    code: str
    name: str  # Norwegian
    #: The rule family a practice of a type that follows its specialty gets (see ``family_of``).
    family: str | None = None


#: Specialties (fagområder) the register accepts, by code. Laboratory fields carry NLK's
#: fagområde letters in their name; the first specialty of a practice is its ``fagomrade``.
SPECIALTIES: Mapping[str, Specialty] = {
    s.code: s
    for s in (
        Specialty("allmennmedisin", "Allmennmedisin"),
        Specialty("anestesiologi", "Anestesiologi"),
        Specialty("barnesykdommer", "Barnesykdommer"),
        Specialty("fysikalsk_medisin", "Fysikalsk medisin og rehabilitering"),
        Specialty("gynekologi", "Fødselshjelp og kvinnesykdommer"),
        Specialty("hudsykdommer", "Hud- og veneriske sykdommer"),
        Specialty("indremedisin", "Indremedisin"),
        Specialty("kirurgi", "Kirurgi"),
        Specialty("nevrologi", "Nevrologi"),
        Specialty("onkologi", "Onkologi"),
        Specialty("oyesykdommer", "Øyesykdommer"),
        Specialty("ore_nese_hals", "Øre-nese-halssykdommer"),
        Specialty("revmatologi", "Revmatologi"),
        Specialty("psykiatri", "Psykiatri", family="psykiatri"),
        Specialty("radiologi", "Radiologi", family="radiologi"),
        Specialty("medisinsk_biokjemi", "Medisinsk biokjemi (MB)", family="lab"),
        Specialty("mikrobiologi", "Medisinsk mikrobiologi (MM)", family="lab"),
        Specialty("immunologi", "Immunologi og transfusjonsmedisin (IT)", family="lab"),
        Specialty("klinisk_farmakologi", "Klinisk farmakologi (KF)", family="lab"),
        Specialty("medisinsk_genetikk", "Medisinsk genetikk (MG)", family="medisinsk_genetikk"),
        Specialty("patologi", "Patologi", family="lab"),
        Specialty("kjeveortopedi", "Kjeveortopedi", family="kjeveortoped"),
        Specialty("oral_kirurgi", "Oral kirurgi og oral medisin"),
        Specialty("periodonti", "Periodonti"),
        Specialty("endodonti", "Endodonti"),
        Specialty("oral_protetikk", "Oral protetikk"),
        Specialty("pedodonti", "Pedodonti"),
        Specialty("kjeve_ansiktsradiologi", "Kjeve- og ansiktsradiologi"),
        Specialty("manuellterapi", "Manuellterapi"),
        Specialty("psykomotorisk", "Psykomotorisk fysioterapi"),
        Specialty("ridefysioterapi", "Ridefysioterapi"),
        Specialty("klinisk_psykologi", "Klinisk psykologi"),
        Specialty("nevropsykologi", "Klinisk nevropsykologi"),
    )
}

_LEGE_SPECIALTIES = frozenset(
    {
        "allmennmedisin",
        "anestesiologi",
        "barnesykdommer",
        "fysikalsk_medisin",
        "gynekologi",
        "hudsykdommer",
        "indremedisin",
        "kirurgi",
        "nevrologi",
        "onkologi",
        "oyesykdommer",
        "ore_nese_hals",
        "revmatologi",
        "psykiatri",
        "radiologi",
    }
)
_LAB_SPECIALTIES = frozenset(
    {
        "medisinsk_biokjemi",
        "mikrobiologi",
        "immunologi",
        "klinisk_farmakologi",
        "medisinsk_genetikk",
        "patologi",
    }
)
_DENTAL_SPECIALTIES = frozenset(
    {
        "kjeveortopedi",
        "oral_kirurgi",
        "periodonti",
        "endodonti",
        "oral_protetikk",
        "pedodonti",
        "kjeve_ansiktsradiologi",
    }
)


_SPECIALIST_CODES = (
    *("SPES", "SPAN", "SPBA", "SPFY", "SPGY", "SPHU", "SPIN", "SPKI"),
    *("SPNE", "SPOK", "SPOL", "SPON", "SPPS", "SPRA", "SPRE"),
)
_PHYSIOTHERAPY_CODES = (
    *("FYNO", "FYKO", "FYMT", "FYPM", "FYRT", "FYUM"),
    *("FYUP", "FYUV", "KOFY", "KORI", "FAFY", "KOFF"),
)


@dataclass(frozen=True, slots=True)
class PracticeType:
    """One kind of sender KUHR serves (or, ``sends_claims=False``, a payee that sends none)."""

    code: str
    name: str  # Norwegian, as the published statistics name it
    #: KUHR's own praksistype codes (navikt/kuhr-krav-api-dokumentasjon, kodeverk.md) that mean
    #: this type; the register import accepts them for ``practice_type``.
    kuhr_codes: tuple[str, ...]
    #: The rule family (practitioner type) of a practice of this type, unless a specialty
    #: decides (``by_specialty``); None for a type that sends no claims.
    family: str | None
    #: The specialties a practice of this type may have.
    specialties: frozenset[str] = frozenset()
    #: The first specialty decides the family (poliklinikk, laboratories, dentists).
    by_specialty: bool = False
    #: At least one specialty is required (a poliklinikk must say what it does).
    specialty_required: bool = False
    #: Reports patients' egenandeler for the frikort ceiling only; never paid a refund.
    egenandel_only: bool = False
    #: May carry a driftsavtale (operating agreement with a municipality or health authority).
    operating_agreement: bool = False
    #: May be owned by a health authority that receives its laboratory refunds.
    owned: bool = False
    sends_claims: bool = True


#: The practice type of a practice whose type the old configuration did not give.
UNRESOLVED = "uavklart"

#: Every practice type, in the order of the issue's list of senders; then ``helseforetak`` (a
#: payee, the owner of public laboratories, that sends no claims itself) and ``uavklart``.
PRACTICE_TYPES: Mapping[str, PracticeType] = {
    t.code: t
    for t in (
        PracticeType(
            "fastlege",
            "Fastlege",
            ("FALE", "FALO", "FATU", "KOFA", "KNFL", "KNND"),
            "lege",
            frozenset({"allmennmedisin"}),
        ),
        PracticeType(
            "legevakt", "Legevakt", ("LEVA", "LEKO", "KOLE"), "lege", frozenset({"allmennmedisin"})
        ),
        PracticeType(
            "spesialistlege",
            "Avtalespesialist (lege)",
            _SPECIALIST_CODES,
            "lege",
            _LEGE_SPECIALTIES,
            operating_agreement=True,
        ),
        PracticeType(
            "poliklinikk",
            "Poliklinisk virksomhet (laboratorium, radiologi, psykiatri)",
            ("SYKE",),
            None,
            _LAB_SPECIALTIES | {"radiologi", "psykiatri"},
            by_specialty=True,
            specialty_required=True,
            owned=True,
        ),
        PracticeType(
            "privat_laboratorium",
            "Privat laboratorium",
            (),
            "lab",
            _LAB_SPECIALTIES,
            by_specialty=True,
        ),
        PracticeType(
            "privat_rontgeninstitutt",
            "Privat røntgeninstitutt",
            (),
            "radiologi",
            frozenset({"radiologi"}),
        ),
        PracticeType(
            "psykologspesialist",
            "Psykologspesialist",
            ("PSNO", "PSNE"),
            "psykolog",
            frozenset({"klinisk_psykologi", "nevropsykologi"}),
            operating_agreement=True,
        ),
        PracticeType(
            "fysioterapeut",
            "Fysioterapeut",
            _PHYSIOTHERAPY_CODES,
            "fysioterapeut",
            frozenset({"manuellterapi", "psykomotorisk", "ridefysioterapi"}),
            operating_agreement=True,
        ),
        PracticeType("kiropraktor", "Kiropraktor", ("KINO",), "kiropraktor"),
        PracticeType(
            "tannlege",
            "Tannlege",
            ("TANN", "TAKJ", "TAFY", "TAFK"),
            "tannlege",
            _DENTAL_SPECIALTIES,
            by_specialty=True,
        ),
        PracticeType("tannpleier", "Tannpleier", ("TAPL", "TAPO"), "tannpleier"),
        PracticeType("helsestasjon", "Helsestasjon", ("HELS", "KOHS"), "helsestasjon"),
        PracticeType(
            "rehabiliteringsinstitusjon",
            "Rehabiliteringsinstitusjon",
            ("OPPT",),
            "rehabilitering",
            egenandel_only=True,
        ),
        PracticeType(
            "behandlingsreiser_utland",
            "Behandlingsreiser i utlandet",
            ("BEUT",),
            "behandlingsreiser",
            egenandel_only=True,
        ),
        PracticeType("logoped", "Logoped", ("LOGO",), "logoped"),
        PracticeType("audiopedagog", "Audiopedagog", ("AUDI",), "audiopedagog"),
        PracticeType("ortoptist", "Ortoptist", ("ORTO",), "ortoptist"),
        PracticeType("pasientreiser", "Pasientreiser", ("PASI",), "pasientreiser"),
        PracticeType(
            "fritt_behandlingsvalg", "Fritt behandlingsvalg", ("FRBE",), "fritt_behandlingsvalg"
        ),
        PracticeType(
            "helseforetak",
            "Regionalt helseforetak (eier av offentlige laboratorier)",
            ("RHFO",),
            None,
            sends_claims=False,
        ),
        # A practice converted from the old receivers file, which said nothing of its type: its
        # bills are typed from the MsgHead (KITH 9060) as before, until the operator says.
        PracticeType(UNRESOLVED, "Praksistype ikke avklart (fra gammel konfigurasjon)", (), None),
    )
}

#: Rule families whose senders report egenandeler only (never paid a refund).
EGENANDEL_ONLY = frozenset(
    t.family for t in PRACTICE_TYPES.values() if t.egenandel_only and t.family is not None
)

#: KUHR praksistype code -> our practice type (codes that name two of ours are left out).
_BY_KUHR_CODE: Mapping[str, str] = {
    code: t.code for t in PRACTICE_TYPES.values() for code in t.kuhr_codes
}
#: KUHR codes that imply a specialty (TAKJ/TAFK: kjeveortoped; FYMT, FYPM, FYRT; PSNE).
KUHR_CODE_SPECIALTY: Mapping[str, str] = {
    "TAKJ": "kjeveortopedi",
    "TAFK": "kjeveortopedi",
    "FYMT": "manuellterapi",
    "FYPM": "psykomotorisk",
    "FYRT": "ridefysioterapi",
    "KORI": "ridefysioterapi",
    "PSNE": "nevropsykologi",
}
#: KUHR's LARO covers private laboratories and private X-ray institutes alike.
AMBIGUOUS_KUHR_CODES: Mapping[str, tuple[str, ...]] = {
    "LARO": ("privat_laboratorium", "privat_rontgeninstitutt")
}


def practice_type(code: str) -> PracticeType | None:
    """The practice type named by our code or by one of KUHR's praksistype codes."""
    found = PRACTICE_TYPES.get(code.strip().lower())
    if found is not None:
        return found
    ours = _BY_KUHR_CODE.get(code.strip().upper())
    return PRACTICE_TYPES[ours] if ours is not None else None


def family_of(kind: PracticeType, specialties: Sequence[str]) -> str | None:
    """The rule family (practitioner type) of a practice of ``kind`` with ``specialties``.

    For a type that follows its specialty, the first specialty that names a family decides
    (a tannlege who is a kjeveortoped is checked as ``kjeveortoped``; a poliklinikk in
    radiology as ``radiologi``); otherwise the type's own family.
    """
    if kind.by_specialty:
        for code in specialties:
            specialty = SPECIALTIES.get(code)
            if specialty is not None and specialty.family is not None:
                return specialty.family
    return kind.family


#: KITH 9060 (kategori helsepersonell) codes we map to practitioner types.
_KITH_9060 = {
    "LE": "lege",
    "TL": "tannlege",
    "TP": "tannpleier",
    "PS": "psykolog",
    "FT": "fysioterapeut",
    "KI": "kiropraktor",
    "OR": "ortoptist",
}
_HPR_TYPES = frozenset({"HPR", "HPR-NUMMER", "HPRNR"})


def practitioner_id(head: MsgHead) -> str:
    """The practitioner's HPR number, else the sender organisation's HER id."""
    professional = head.sender.professional
    if professional is not None:
        for ident in professional.idents:
            if ident.type.upper() in _HPR_TYPES and ident.id:
                return ident.id
    return head.sender.her_id or ""


def type_from_professional(head: MsgHead) -> str | None:
    """The practitioner type the MsgHead's HealthcareProfessional (KITH 9060) gives, if any."""
    professional = head.sender.professional
    if professional is not None and professional.type is not None:
        return _KITH_9060.get(professional.type.value.upper())
    return None


def practitioner_type(head: MsgHead, registry: Mapping[str, str]) -> str | None:
    """The practitioner type from ``registry`` (sender HER id -> type), else from KITH 9060."""
    her = head.sender.her_id
    if her and her in registry:
        return registry[her]
    return type_from_professional(head)
