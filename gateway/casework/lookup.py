"""Finding a stored bill by what a case worker has at hand, and what may be shown of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from gateway.errors import GatewayError
from gateway.records import CaseBill, CaseLine, OverrideRecord, StoredFinding
from gateway.store import Store


class CaseworkError(GatewayError):
    """A case worker's request cannot be done as asked (unknown bill, refused override, …).

    The message is Norwegian and is shown as it is; it never contains a national id."""


#: ``<HER-id>:<RegningNr>``, optionally written ``HER:<HER-id>:<RegningNr>``.
_HER_REF = re.compile(r"(?i)^(?:HER:)?(?P<her>\d+):(?P<nr>[^\s:]+)$")


def resolve_bill(store: Store, ref: str) -> CaseBill:
    """The bill ``ref`` names: a bill id (digits), a Guid, or ``<HER-id>:<RegningNr>`` (the
    sender's HER id and the bill's RegningNr; ``HER:`` in front is allowed)."""
    ref = ref.strip()
    if ref.isdigit():
        bill = store.casework.bill(int(ref))
        if bill is None:
            raise CaseworkError(f"Fant ingen regning med id {ref}.")
        return bill
    match = _HER_REF.match(ref)
    if match:
        ids = store.casework.bill_ids(sender_her=match["her"], regning_nr=match["nr"])
        what = f"RegningNr {match['nr']} fra HER-id {match['her']}"
    elif ":" in ref:
        raise CaseworkError(
            f"Forstår ikke {ref!r}: skriv <HER-id>:<RegningNr>, f.eks. 8141253:1001."
        )
    else:
        ids = store.casework.bill_ids(guid=ref)
        what = f"Guid {ref}"
    if not ids:
        raise CaseworkError(f"Fant ingen regning med {what}.")
    if len(ids) > 1:
        listed = ", ".join(_describe(store, i) for i in ids)
        raise CaseworkError(f"Flere regninger har {what}: {listed}. Oppgi regningens id i stedet.")
    bill = store.casework.bill(ids[0])
    assert bill is not None
    return bill


def _describe(store: Store, bill_id: int) -> str:
    bill = store.casework.bill(bill_id)
    if bill is None:  # pragma: no cover - the id came from the store
        return f"id {bill_id}"
    credit = ", kreditering" if bill.kreditering else ""
    return f"id {bill.id} (RegningNr {bill.regning_nr}, {bill.effective_status}{credit})"


def mask_national_id(value: str) -> str:
    """A national identity number cut to its birth-date part: ``DDMMYY*****``.

    Anything not shaped like an 11-digit number is masked whole."""
    value = value.strip()
    if len(value) == 11 and value.isdigit():
        return value[:6] + "*" * 5
    return "*" * max(len(value), 5)


MASK_NOTE = "fødselsnummer vises maskert: bare fødselsdatoen (DDMMÅÅ) og *****"


def masked(text: str, patient_id: str) -> str:
    """``text`` with any occurrence of the patient's national id masked."""
    if not patient_id or patient_id not in text:
        return text
    return text.replace(patient_id, mask_national_id(patient_id))


def parse_kroner(text: str) -> int:
    """A kroner amount (``1234.50``, ``1234,50``, ``1 234``) as øre; at most two decimals."""
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise CaseworkError(f"Beløpet {text!r} er ikke et tall i kroner.") from exc
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise CaseworkError(f"Beløpet {text!r} kan ha høyst to desimaler.")
    return int(value * 100)


def kroner(ore: int | None) -> str:
    """Øre as Norwegian kroner text: ``1 234,50``."""
    if ore is None:
        return "-"
    sign = "-" if ore < 0 else ""
    whole, cents = divmod(abs(ore), 100)
    return f"{sign}{whole:,}".replace(",", " ") + f",{cents:02d}"


def decimal_kroner(ore: int | None) -> str | None:
    """Øre as a plain decimal string for JSON (``1234.50``)."""
    if ore is None:
        return None
    sign = "-" if ore < 0 else ""
    whole, cents = divmod(abs(ore), 100)
    return f"{sign}{whole}.{cents:02d}"


@dataclass(frozen=True, slots=True)
class BillDetails:
    """Everything ``gateway claims show`` prints about one bill."""

    bill: CaseBill
    lines: tuple[CaseLine, ...]
    findings: tuple[StoredFinding, ...]  # of this bill, from the original decision
    message_findings: tuple[StoredFinding, ...]  # message rules of its message
    overrides: tuple[OverrideRecord, ...]


def bill_details(store: Store, bill: CaseBill) -> BillDetails:
    """Load the lines, findings and overrides of a bill."""
    stored = store.casework.findings(bill.message_id)
    return BillDetails(
        bill=bill,
        lines=tuple(store.casework.bill_lines(bill.id)),
        findings=tuple(f for f in stored if f.bill_id == bill.id),
        message_findings=tuple(f for f in stored if f.bill_id is None),
        overrides=tuple(store.casework.overrides_for(bill.id)),
    )
