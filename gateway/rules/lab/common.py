"""What the laboratory (NLK) rules share: who they apply to, the list codes, code lookups.

Every lab rule applies to the practitioner types in ``LAB_PRACTITIONERS`` only, is in force from
``NLK_START`` (analyses from 2018-01-01 are claimed with NLK codes; the analysis date, DatoTid,
decides) and does nothing when the tariff book carries no NLK register or when the bill is a
credit (a credit names a bill that already passed these rules; ``credit_whole_bill`` checks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal

from gateway.claims.model import Enkeltregning, Takst
from gateway.rules.base import ClaimContext
from gateway.tariffs.model import NlkEntry, TariffBook

#: Practitioner types that claim with NLK codes.
LAB = "lab"
GENETICS_LAB = "medisinsk_genetikk"
LAB_PRACTITIONERS = frozenset({LAB, GENETICS_LAB})

#: The day NLK replaced the old laboratory takster (catalogue LAB-001).
NLK_START = date(2018, 1, 1)

#: Codes that may repeat per panel, set-up or antigen, within a bill and across bills. The
#: register's ``list_code`` flag marks them too; either is enough.
LIST_CODES = frozenset({"NPU21747", "NPU26765", "NPU20200"})

#: Other codes that may repeat, by why: unspecific codes (one code for
#: several different analyses), blood-compatibility tests (one per blood unit) and verification
#: measurements (a result measured again to confirm it). The real NLK codes are not in our
#: sources; these are the ILLUSTRATIVE codes of fixtures/tariffs/nlk-codes.csv, and an operator
#: marks real ones with the register's ``list_code`` flag.
REPEATABLE_CODES: Mapping[str, str] = {
    "NOR99501": "uspesifikk kode",
    "NOR99502": "uspesifikk kode",
    "NOR99601": "forlikelighetsprøve per blodenhet",
    "NOR99701": "verifikasjonsmåling",
}

#: HPV analyses (ILLUSTRATIVE codes, as above): refunded only under the screening criteria of
#: the cervical cancer screening programme (Livmorhalsprogrammet), see ``hpv``.
HPV_CODES = frozenset({"NOR99801", "NOR99802"})

GENETICS_FIELD = "MG"  # fagområde medisinsk genetikk
CLINICAL_PHARMACOLOGY = "KF"  # fagområde klinisk farmakologi

#: Our convention (the BKM has no inpatient flag): a ``Prosedyrekode`` with this value (any code
#: system) says the analyses were made for an inpatient (innlagt pasient). See ``inpatient``.
INPATIENT_MARKER = "INNLAGT"

_REPLACE_CHAIN_LIMIT = 20


def applies(bill: Enkeltregning, ctx: ClaimContext) -> bool:
    """Whether the lab rules look at this bill at all."""
    return (
        ctx.practitioner in LAB_PRACTITIONERS
        and bool(ctx.tariffs.nlk_codes)
        and not bill.kreditering
    )


def lines(bill: Enkeltregning, ctx: ClaimContext) -> list[tuple[Takst, NlkEntry | None]]:
    """Each takst line with its NLK register entry valid on the analysis date (or None)."""
    day = bill.dato_tid.date()
    return [(takst, ctx.tariffs.nlk(takst.kode, day)) for takst in bill.behandling.takster]


def is_list_code(code: str, entry: NlkEntry | None) -> bool:
    return code.upper() in LIST_CODES or (entry is not None and entry.list_code)


def may_repeat(code: str, entry: NlkEntry | None) -> bool:
    """Whether a code may be claimed more than once (on a bill, and per patient and day): a
    list code, or one of ``REPEATABLE_CODES``."""
    return is_list_code(code, entry) or code.upper() in REPEATABLE_CODES


def is_genetics(entry: NlkEntry) -> bool:
    return entry.fagomrade.upper() == GENETICS_FIELD


def is_pharmacogenetic(entry: NlkEntry) -> bool:
    """A pharmacogenetic analysis in clinical pharmacology (the genetics labs' exception)."""
    return entry.pharmacogenetic and entry.fagomrade.upper() == CLINICAL_PHARMACOLOGY


def payable_category(book: TariffBook, entry: NlkEntry, on: date) -> str:
    """The refusjonskategori the code is paid at on ``on``.

    A replacing code takes the category of the code it replaces (``TariffBook.category_of``),
    followed along a chain of replacements (A replaces B which replaced C: A is paid as C). When
    the replaced code is unknown the code keeps its own category; a code without a category
    falls in category 2 of its field (new codes: MB2, MM2, KF2, IT2, MG2).
    """
    current = entry
    seen = {entry.code.upper()}
    for _ in range(_REPLACE_CHAIN_LIMIT):
        if not current.replaces:
            break
        replaced = book.nlk(current.replaces, current.valid_from - timedelta(days=1)) or book.nlk(
            current.replaces, current.valid_from
        )
        if replaced is None or replaced.code.upper() in seen:
            break
        seen.add(replaced.code.upper())
        current = replaced
    category = book.category_of(current, on)
    return category or f"{current.fagomrade.upper()}2"


def kroner(amount: Decimal) -> str:
    return f"{amount:.2f}"


def listed(codes: Iterable[str]) -> str:
    """Codes in first-seen order, each once, comma separated."""
    return ", ".join(dict.fromkeys(codes))
