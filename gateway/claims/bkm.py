"""Read a BehandlerKrav (BKM 2006-12-20) element into ``BehandlerKrav`` values.

Robust against any element tree, validated or not: the only exceptions are ``SchemaInvalid``
(with an XPath-like ``location``) and ``UnsupportedMessageType``. Error texts never quote values
from the message (bills carry national identity numbers).

Not modelled, so ignored: ``Konto`` and the currency attributes ``U``. Element order is not
checked here; that is the XSD's job.
"""

from __future__ import annotations

from lxml import etree

from gateway.claims.model import (
    BehandlerKrav,
    Behandling,
    Code,
    Enkeltregning,
    Ident,
    Takst,
)
from gateway.claims.msghead import Node, element_path, split_tag
from gateway.errors import UnsupportedMessageType

__all__ = ["BKM_NS", "parse_behandlerkrav"]

BKM_NS = "http://www.kith.no/xmlstds/bkm/2006-12-20"


def parse_behandlerkrav(element: etree._Element) -> BehandlerKrav:
    """Read a BehandlerKrav root element; raise ``SchemaInvalid``/``UnsupportedMessageType``."""
    if split_tag(element) != (BKM_NS, "BehandlerKrav"):
        raise UnsupportedMessageType(
            f"Dokumentet er ikke en BehandlerKrav (navnerommet {BKM_NS}).",
            location=element_path(element),
        )
    krav = Node(element, element_path(element), BKM_NS)
    regninger = tuple(_enkeltregning(n) for n in krav.children("Enkeltregning"))
    if not regninger:
        krav.child("Enkeltregning")  # raises SchemaInvalid for the missing element
    totals = krav.child("Krav")
    return BehandlerKrav(
        navn_epj=krav.opt_attr("navnEPJ"),
        versjon_epj=krav.opt_attr("versjonEPJ"),
        regninger=regninger,
        antall_regninger=totals.child("AntallRegninger").as_positive_int(),
        sum_krav_samlet=totals.child("SumKravSamlet").amount_attr("V"),
    )


def _enkeltregning(node: Node) -> Enkeltregning:
    betalt = node.child("BetaltEgenandel")
    korrigering = betalt.opt_attr("korrigering")
    patient = node.child("Patient").child("Ident")
    return Enkeltregning(
        # Kept as sent (braces, case), only trimmed: it is the sender's key for the bill.
        guid=node.child("Guid").text(),
        betalt_egenandel=betalt.bool_attr("erBetalt"),
        egenandel_korrigering=korrigering is not None and betalt.bool_attr("korrigering"),
        kreditering=node.child("Kreditering").as_bool(),
        regning_nr=node.child("RegningNr").token(),
        dato_tid=node.child("DatoTid").as_datetime(),
        patient=Ident(patient.child("Id").text(), patient.child("TypeId").token_attr("V")),
        behandling=_behandling(node.child("Behandling")),
    )


def _behandling(node: Node) -> Behandling:
    kode_egenandel = node.opt("KodeEgenandel")
    henvisnings_dato = node.opt("HenvisningsDato")
    henvisnings_id = node.opt("HenvisningsId")
    henvisnings_diagnose = node.opt("HenvisningsDiagnose")
    relatert_behandler = node.opt("RelatertBehandler")
    takster = tuple(_takst(n) for n in node.children("Takst"))
    if not takster:
        node.child("Takst")  # raises SchemaInvalid for the missing element
    return Behandling(
        kode_egenandel=None
        if kode_egenandel is None
        else Code(kode_egenandel.token_attr("V"), None, kode_egenandel.opt_attr("DN")),
        diagnoser=tuple(_code(n) for n in node.children("Diagnose")),
        henvisnings_dato=None if henvisnings_dato is None else henvisnings_dato.as_date(),
        henvisnings_id=None if henvisnings_id is None else henvisnings_id.text(),
        henvisnings_diagnose=None if henvisnings_diagnose is None else _code(henvisnings_diagnose),
        relatert_behandler=None if relatert_behandler is None else relatert_behandler.text(),
        takster=takster,
        prosedyrekoder=tuple(_code(n) for n in node.children("Prosedyrekode")),
        tenner=tuple(n.token() for n in node.children("Tann")),
        sum_refusjon=node.child("SumKrav").child("Refusjon").amount_attr("V"),
    )


def _takst(node: Node) -> Takst:
    return Takst(
        kode=node.child("Kode").token(),
        verdi=node.child("Verdi").amount_attr("V"),
        antall=node.child("Antall").as_positive_int(),
    )


def _code(node: Node) -> Code:
    """A CV-like value: ``V`` required, ``S`` and ``DN`` optional."""
    return Code(node.token_attr("V"), node.opt_token_attr("S"), node.opt_attr("DN"))
