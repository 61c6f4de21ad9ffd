"""The payout decision message (utbetalingsvedtak v1), the project's own format.

One decision per receiver and payout run: who pays whom, to which account, and per bill the
approved lines, the status, the amount paid (negative for a reversal or correction) and the
remarks with guidance. The XML validates against ``schemas/utbetalingsvedtak-v1.xsd``.

Patients appear only as a pseudonymous reference (``patient_reference``), never by national
identity number. Amounts are ``Decimal`` kroner with at most two fraction digits, never floats.
The same ``Decision`` always gives byte-identical XML.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import cast

from lxml import etree

from gateway.claims.model import Organisation
from gateway.receipts.apprec import format_datetime, xml_safe
from gateway.security.xmldsig import Signer, serialize

VEDTAK_NS = "http://gateway.kuhr.no/xmlstds/utbetalingsvedtak/v1"

#: Bill statuses the schema allows.
STATUSES = frozenset({"godkjent", "avvist", "kreditert", "korrigert"})

_V = f"{{{VEDTAK_NS}}}"
_NSMAP = cast("dict[str, str]", {None: VEDTAK_NS})

_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal(10) ** 16  # xs:totalDigits 18 with 2 fraction digits
_ACCOUNT = re.compile(r"[0-9]{11}")
_KID = re.compile(r"[0-9]{1,24}[0-9-]")
_PATIENT_REF = re.compile(r"[0-9a-f]{20}")
_ORGANISATION_ID_TYPES = ("HER", "ENH")


def patient_reference(national_id: str, secret: bytes) -> str:
    """Pseudonymous patient reference: HMAC-SHA256 of ``national_id``, hex, first 20 characters.

    Stable for one ``secret``; without the secret it cannot be traced back to the person.
    """
    if not secret:
        raise ValueError("patient reference secret must not be empty")
    if not national_id.strip():
        raise ValueError("national id must not be empty")
    digest = hmac.new(secret, national_id.strip().encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:20]


def _check_text(value: str, what: str) -> None:
    if not value:
        raise ValueError(f"{what} must not be empty")


def _check_amount(value: Decimal, what: str) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite amount: {value}")
    if abs(value) >= _MAX_AMOUNT or value != value.quantize(_CENT):
        raise ValueError(f"{what} must be kroner with at most two decimals: {value}")


def format_amount(value: Decimal) -> str:
    """``value`` as ``xs:decimal`` with exactly two fraction digits (no ``-0.00``)."""
    quantized = value.quantize(_CENT)
    if quantized == 0:
        quantized = Decimal("0.00")
    return f"{quantized:f}"


@dataclass(frozen=True, slots=True)
class DecisionLine:
    """One takst/NLK line: the code, how many, and the approved amount in kroner."""

    kode: str
    antall: int
    belop: Decimal

    def __post_init__(self) -> None:
        _check_text(self.kode, "line code")
        if isinstance(self.antall, bool) or not isinstance(self.antall, int) or self.antall < 1:
            raise ValueError(f"line count must be a positive integer: {self.antall!r}")
        _check_amount(self.belop, "line amount")


@dataclass(frozen=True, slots=True)
class DecisionNote:
    """A remark (merknad): code, text, and for rejected bills what to do differently next time."""

    kode: str
    tekst: str
    veiledning: str | None = None

    def __post_init__(self) -> None:
        _check_text(self.kode, "note code")
        _check_text(self.tekst, "note text")
        if self.veiledning is not None:
            _check_text(self.veiledning, "note guidance")


@dataclass(frozen=True, slots=True)
class DecisionBill:
    """One bill in a decision. ``patient_ref`` comes from ``patient_reference``.

    ``avvist`` pays nothing, ``godkjent`` pays zero or more, ``kreditert`` reverses (zero or
    less), ``korrigert`` may go either way.
    """

    regning_nr: str
    guid: str
    patient_ref: str
    behandlingsdato: datetime
    lines: tuple[DecisionLine, ...]
    status: str
    utbetalt: Decimal
    notes: tuple[DecisionNote, ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.regning_nr, "RegningNr")
        _check_text(self.guid, "Guid")
        if not _PATIENT_REF.fullmatch(self.patient_ref):
            raise ValueError("patient_ref must be a reference from patient_reference()")
        if self.status not in STATUSES:
            raise ValueError(f"unknown bill status {self.status!r}")
        _check_amount(self.utbetalt, "paid amount")
        if self.status == "avvist" and self.utbetalt != 0:
            raise ValueError("a rejected bill pays nothing")
        if self.status == "godkjent" and self.utbetalt < 0:
            raise ValueError("an approved bill cannot pay a negative amount")
        if self.status == "kreditert" and self.utbetalt > 0:
            raise ValueError("a credited bill cannot pay a positive amount")


@dataclass(frozen=True, slots=True)
class DecisionPaper:
    """A paper claim paid in this decision: only its aggregate (no patient, no lines)."""

    innsending: str
    periode_fra: date
    periode_til: date
    antall_regninger: int
    utbetalt: Decimal

    def __post_init__(self) -> None:
        _check_text(self.innsending, "Innsending")
        _check_amount(self.utbetalt, "paper claim amount")


@dataclass(frozen=True, slots=True)
class Decision:
    """A payout decision for one receiver in one run (``kjoring``)."""

    vedtak_id: str
    kjoring: str
    vedtaksdato: date
    payer: Organisation
    receiver: Organisation
    account: str | None
    kid: str | None
    bills: tuple[DecisionBill, ...]
    papir: tuple[DecisionPaper, ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.vedtak_id, "VedtakId")
        _check_text(self.kjoring, "Kjoring")
        if isinstance(self.vedtaksdato, datetime) or not isinstance(self.vedtaksdato, date):
            raise TypeError("vedtaksdato must be a date")
        for role, organisation in (("payer", self.payer), ("receiver", self.receiver)):
            _check_text(organisation.name, f"{role} name")
            if not _organisation_idents(organisation):
                raise ValueError(f"{role} needs a HER or ENH id")
        if self.account is not None and not _ACCOUNT.fullmatch(self.account):
            raise ValueError("account must be 11 digits")
        if self.kid is not None:
            if self.account is None:
                raise ValueError("a KID needs an account")
            if not _KID.fullmatch(self.kid):
                raise ValueError("KID must be 2 to 25 digits (the last may be '-')")

    @property
    def total(self) -> Decimal:
        """Sum of what the bills and paper claims pay, in kroner (exact decimal arithmetic)."""
        paid = [bill.utbetalt for bill in self.bills] + [p.utbetalt for p in self.papir]
        return sum(paid, Decimal("0.00"))


def build_decision(decision: Decision) -> etree._Element:
    """The ``Utbetalingsvedtak`` element for ``decision`` (unsigned)."""
    root = etree.Element(_V + "Utbetalingsvedtak", nsmap=_NSMAP)
    _sub(root, "VedtakId", decision.vedtak_id)
    _sub(root, "Kjoring", decision.kjoring)
    _sub(root, "Vedtaksdato", decision.vedtaksdato.isoformat())
    _organisation(_sub(root, "Utbetaler"), decision.payer)
    _organisation(_sub(root, "Mottaker"), decision.receiver)
    if decision.account is not None:
        konto = _sub(root, "Konto")
        _sub(konto, "Kontonummer", decision.account)
        if decision.kid is not None:
            _sub(konto, "KID", decision.kid)
    for bill in decision.bills:
        regning = _sub(root, "Regning")
        _sub(regning, "RegningNr", bill.regning_nr)
        _sub(regning, "Guid", bill.guid)
        _sub(regning, "Pasientreferanse", bill.patient_ref)
        _sub(regning, "Behandlingsdato", format_datetime(bill.behandlingsdato))
        for line in bill.lines:
            linje = _sub(regning, "Linje")
            _sub(linje, "Kode", line.kode)
            _sub(linje, "Antall", str(line.antall))
            _sub(linje, "Belop", format_amount(line.belop))
        _sub(regning, "Status", bill.status)
        _sub(regning, "Utbetalt", format_amount(bill.utbetalt))
        for note in bill.notes:
            merknad = _sub(regning, "Merknad")
            _sub(merknad, "Kode", note.kode)
            _sub(merknad, "Tekst", note.tekst)
            if note.veiledning is not None:
                _sub(merknad, "Veiledning", note.veiledning)
    for paper in decision.papir:
        innsending = _sub(root, "Papirinnsending")
        _sub(innsending, "Innsending", paper.innsending)
        _sub(innsending, "PeriodeFra", paper.periode_fra.isoformat())
        _sub(innsending, "PeriodeTil", paper.periode_til.isoformat())
        _sub(innsending, "AntallRegninger", str(paper.antall_regninger))
        _sub(innsending, "Utbetalt", format_amount(paper.utbetalt))
    total = _sub(root, "Sum")
    _sub(total, "AntallRegninger", str(len(decision.bills)))
    _sub(total, "Utbetalt", format_amount(decision.total))
    return root


def signed_decision_bytes(decision: Decision, signer: Signer) -> bytes:
    """The decision signed with an enveloped XML-DSig (``ds:Signature`` last), as UTF-8 bytes."""
    return serialize(signer.sign(build_decision(decision)))


# --- helpers --------------------------------------------------------------------------------------


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _V + name)
    if text is not None:
        element.text = xml_safe(text)
    return element


def _organisation_idents(organisation: Organisation) -> list[tuple[str, str]]:
    return [
        (ident.id, ident.type)
        for ident in organisation.idents
        if ident.type in _ORGANISATION_ID_TYPES and ident.id
    ]


def _organisation(parent: etree._Element, organisation: Organisation) -> None:
    _sub(parent, "Navn", organisation.name)
    for ident_id, ident_type in _organisation_idents(organisation):
        ident = _sub(parent, "Ident")
        _sub(ident, "Id", ident_id)
        _sub(ident, "Type", ident_type)
