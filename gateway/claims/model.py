"""Typed, frozen values for what a claim message carries: the MsgHead and the BehandlerKrav.

Produced by ``gateway.claims.msghead`` and ``gateway.claims.bkm`` from validated XML; consumed by
the rules, the store and the receipts. Amounts are ``Decimal`` (never floats); times are naive
``datetime`` values in Norwegian local time, as the messages carry them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value (KITH CS/CV): ``V`` the code, ``S`` the code system OID, ``DN`` its text."""

    value: str
    system: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Ident:
    """An identifier with its type, e.g. ``Ident("79768", "HER")`` or ``Ident("…", "ENH")``."""

    id: str
    type: str


@dataclass(frozen=True, slots=True)
class HealthcareProfessional:
    """The practitioner named in the MsgHead sender, if any."""

    type: Code | None
    family_name: str | None
    given_name: str | None
    idents: tuple[Ident, ...]


@dataclass(frozen=True, slots=True)
class Organisation:
    """A MsgHead sender or receiver organisation."""

    name: str
    idents: tuple[Ident, ...]
    professional: HealthcareProfessional | None = None

    def ident(self, type_: str) -> str | None:
        """The first identifier of the given type (``"HER"``, ``"ENH"``), or ``None``."""
        for ident in self.idents:
            if ident.type == type_:
                return ident.id
        return None

    @property
    def her_id(self) -> str | None:
        return self.ident("HER")


@dataclass(frozen=True, slots=True)
class MsgHead:
    """The KITH MsgHead v1.2 envelope of a claim message (without the payload)."""

    msg_type: Code  # e.g. Code("POM", text="Poliklinisk oppgjørsmelding")
    mig_version: str
    gen_date: datetime
    msg_id: str
    sender: Organisation
    receiver: Organisation
    content_description: str | None  # RefDoc/Description, e.g. "BehandlerKrav"


@dataclass(frozen=True, slots=True)
class Takst:
    """One claimed takst (or NLK laboratory code) line."""

    kode: str
    verdi: Decimal  # Verdi/@V, kroner
    antall: int


@dataclass(frozen=True, slots=True)
class Behandling:
    """The treatment part of a bill."""

    kode_egenandel: Code | None  # kodeverk 7461 (A, B, F, G, H …): why no egenandel was charged
    diagnoser: tuple[Code, ...]
    henvisnings_dato: date | None
    henvisnings_id: str | None
    henvisnings_diagnose: Code | None
    relatert_behandler: str | None
    takster: tuple[Takst, ...]
    prosedyrekoder: tuple[Code, ...]
    tenner: tuple[str, ...]
    sum_refusjon: Decimal  # SumKrav/Refusjon/@V


@dataclass(frozen=True, slots=True)
class Enkeltregning:
    """One bill (enkeltregning) inside a BehandlerKrav."""

    guid: str
    betalt_egenandel: bool
    egenandel_korrigering: bool
    kreditering: bool
    regning_nr: str
    dato_tid: datetime
    # The national identity number: kept out of repr so a logged or printed bill never shows it.
    patient: Ident = field(repr=False)
    behandling: Behandling


@dataclass(frozen=True, slots=True)
class BehandlerKrav:
    """The claim: its bills and the stated totals."""

    navn_epj: str | None
    versjon_epj: str | None
    regninger: tuple[Enkeltregning, ...]
    antall_regninger: int
    sum_krav_samlet: Decimal
