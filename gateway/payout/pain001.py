"""The payment file of a run: ISO 20022 pain.001.001.03 (CustomerCreditTransferInitiation).

Built with lxml, not with a library. ``sepaxml`` (2.7, the well-kept Python package) was
checked: it writes only IBAN accounts and unstructured remittance text, transliterates names to
ASCII and has no types; a Norwegian domestic payment wants the BBAN (11-digit account, scheme
``BBAN``) and the KID as a structured creditor reference (``SCOR``), as Norwegian banks' pain.001
message guides describe. The pain.001.001.03 XSD that ``sepaxml`` bundles is what the tests
validate against (``sepaxml`` is a test-only dependency for that schema).

One ``PmtInf`` (debtor = the payer's account) with one ``CdtTrfTxInf`` per payee: the payee's
net total of the run in NOK, its account, and as remittance the KID where it has one, else the
decision id (``Utbetalingsvedtak <id>``). Amounts are ``Decimal`` kroner, never floats; a payment
of 0 or less is refused (the caller leaves such payees out). The same ``PaymentRun`` always
gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import cast

from lxml import etree

from gateway.practices.accounts import valid_account, valid_kid

PAIN001_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
CURRENCY = "NOK"

_P = f"{{{PAIN001_NS}}}"
_NSMAP = cast("dict[str, str]", {None: PAIN001_NS})
_CENT = Decimal("0.01")
_MAX35 = 35


@dataclass(frozen=True, slots=True)
class Payment:
    """One credit transfer: to ``account`` (BBAN), ``amount`` NOK, with a KID or a reference."""

    end_to_end_id: str
    name: str
    account: str
    amount: Decimal
    kid: str | None
    reference: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("amount must be a Decimal")
        if not self.amount.is_finite() or self.amount != self.amount.quantize(_CENT):
            raise ValueError(f"amount must be kroner with at most two decimals: {self.amount}")
        if self.amount <= 0:
            raise ValueError(f"a payment must be positive: {self.amount}")
        if not valid_account(self.account):
            raise ValueError(f"not a valid account number: {self.account!r}")
        if self.kid is not None and not valid_kid(self.kid):
            raise ValueError(f"not a valid KID: {self.kid!r}")


@dataclass(frozen=True, slots=True)
class PaymentRun:
    """All payments of one payout run, from the payer's account."""

    message_id: str
    created_at: datetime  # local, naive (ISODateTime without offset, as banks expect)
    execution_date: date
    payer_name: str
    payer_org_number: str | None
    payer_account: str
    payer_bic: str | None
    payments: tuple[Payment, ...]

    @property
    def total(self) -> Decimal:
        """The control sum: all payments, exactly."""
        return sum((p.amount for p in self.payments), Decimal("0.00"))


def short_id(value: str) -> str:
    """``value`` if it fits a Max35Text id, else a stable 35-character digest-based id."""
    if len(value) <= _MAX35:
        return value
    return value[:18] + "-" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def build_pain001(run: PaymentRun) -> bytes:
    """The pain.001.001.03 document for ``run`` as UTF-8 bytes; ``ValueError`` without payments."""
    if not run.payments:
        raise ValueError("a pain.001 file needs at least one payment")
    if not valid_account(run.payer_account):
        raise ValueError(f"not a valid payer account: {run.payer_account!r}")
    root = etree.Element(_P + "Document", nsmap=_NSMAP)
    initiation = _sub(root, "CstmrCdtTrfInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", short_id(run.message_id))
    _sub(header, "CreDtTm", run.created_at.replace(microsecond=0, tzinfo=None).isoformat())
    _sub(header, "NbOfTxs", str(len(run.payments)))
    _sub(header, "CtrlSum", _amount(run.total))
    _party(_sub(header, "InitgPty"), run.payer_name, run.payer_org_number)

    info = _sub(initiation, "PmtInf")
    _sub(info, "PmtInfId", short_id(run.message_id))
    _sub(info, "PmtMtd", "TRF")
    _sub(info, "NbOfTxs", str(len(run.payments)))
    _sub(info, "CtrlSum", _amount(run.total))
    _sub(info, "ReqdExctnDt", run.execution_date.isoformat())
    _party(_sub(info, "Dbtr"), run.payer_name, run.payer_org_number)
    _account(_sub(info, "DbtrAcct"), run.payer_account)
    agent = _sub(_sub(info, "DbtrAgt"), "FinInstnId")
    if run.payer_bic is not None:
        _sub(agent, "BIC", run.payer_bic)
    for payment in run.payments:
        _transaction(info, payment)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _transaction(parent: etree._Element, payment: Payment) -> None:
    tx = _sub(parent, "CdtTrfTxInf")
    _sub(_sub(tx, "PmtId"), "EndToEndId", short_id(payment.end_to_end_id))
    amount = _sub(_sub(tx, "Amt"), "InstdAmt", _amount(payment.amount))
    amount.set("Ccy", CURRENCY)
    _sub(_sub(tx, "Cdtr"), "Nm", payment.name[:70])
    _account(_sub(tx, "CdtrAcct"), payment.account, currency=False)
    remittance = _sub(tx, "RmtInf")
    if payment.kid is not None:
        reference = _sub(_sub(remittance, "Strd"), "CdtrRefInf")
        _sub(_sub(_sub(reference, "Tp"), "CdOrPrtry"), "Cd", "SCOR")
        _sub(reference, "Ref", payment.kid)
    else:
        _sub(remittance, "Ustrd", payment.reference[:140])


def _party(parent: etree._Element, name: str, org_number: str | None) -> None:
    _sub(parent, "Nm", name[:70])
    if org_number is not None:
        other = _sub(_sub(_sub(parent, "Id"), "OrgId"), "Othr")
        _sub(other, "Id", org_number)
        _sub(_sub(other, "SchmeNm"), "Cd", "CUST")


def _account(parent: etree._Element, account: str, *, currency: bool = True) -> None:
    other = _sub(_sub(parent, "Id"), "Othr")
    _sub(other, "Id", account)
    _sub(_sub(other, "SchmeNm"), "Cd", "BBAN")
    if currency:
        _sub(parent, "Ccy", CURRENCY)


def _amount(value: Decimal) -> str:
    return f"{value.quantize(_CENT):f}"


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _P + name)
    if text is not None:
        element.text = text
    return element
