"""An in-memory claim history and the small builders that rule tests share.

Shipped in the package on purpose (like ``structlog.testing``); nothing here is used by the daemon.

- ``MemoryHistory``: the whole ``ClaimHistory`` protocol over in-memory data, answering as
  ``gateway.store.history.History`` does for the same bills: approved bills by (sender HER id,
  Guid), and the window and count queries over a list of live approved ``HistoricBill``.
- ``msghead``, ``enkeltregning``, ``behandlerkrav`` and ``context``: a MsgHead, a bill, a
  BehandlerKrav whose count and sum match its bills, and a ``ClaimContext`` for a rule engine.
- ``acting_codes``: per bill, the codes of the findings that act (not warnings).
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

from gateway.claims.model import (
    BehandlerKrav,
    Behandling,
    Code,
    Enkeltregning,
    Ident,
    MsgHead,
    Organisation,
    Takst,
)
from gateway.rules.base import ClaimContext, ClaimHistory, HistoricBill, Severity, StoredBill
from gateway.rules.engine import Evaluation
from gateway.tariffs.model import EMPTY_BOOK, TariffBook

__all__ = [
    "MemoryHistory",
    "acting_codes",
    "behandlerkrav",
    "context",
    "enkeltregning",
    "msghead",
]

#: SQLite's ``lower()`` without ICU: ASCII letters only.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class MemoryHistory:
    """A ``ClaimHistory`` over in-memory bills, filtering as the store's queries do.

    ``bills`` are the live (approved, uncredited) originals the window and count queries see;
    ``approved`` maps (sender HER id, Guid) to what ``approved_bill`` returns. ``calls`` counts
    the queries asked, by method name.
    """

    def __init__(
        self,
        *bills: HistoricBill,
        approved: Mapping[tuple[str, str], StoredBill] | None = None,
    ) -> None:
        self.bills: tuple[HistoricBill, ...] = bills
        self.approved: dict[tuple[str, str], StoredBill] = dict(approved or {})
        self.calls: Counter[str] = Counter()

    def approved_bill(self, sender_her: str, guid: str) -> StoredBill | None:
        self.calls["approved_bill"] += 1
        return self.approved.get((sender_her, guid))

    def practitioner_bills_between(
        self, practitioner_id: str, start: datetime, end: datetime
    ) -> list[HistoricBill]:
        self.calls["practitioner_bills_between"] += 1
        return self._between(lambda b: b.practitioner_id == practitioner_id, start, end)

    def patient_bills_between(
        self, patient_id: str, start: datetime, end: datetime
    ) -> list[HistoricBill]:
        self.calls["patient_bills_between"] += 1
        return self._between(lambda b: b.patient_id == patient_id, start, end)

    def patient_code_count(
        self, patient_id: str, codes: frozenset[str], start: datetime, end: datetime
    ) -> int:
        self.calls["patient_code_count"] += 1
        return sum(
            antall
            for b in self._between(lambda b: b.patient_id == patient_id, start, end)
            for kode, antall in b.takster
            if kode.translate(_ASCII_LOWER) in codes
        )

    def _between(
        self, match: Callable[[HistoricBill], bool], start: datetime, end: datetime
    ) -> list[HistoricBill]:
        """The matching bills with DatoTid in ``[start, end)``, by DatoTid (stable)."""
        found = (b for b in self.bills if match(b) and start <= b.dato_tid < end)
        return sorted(found, key=lambda b: b.dato_tid)


def msghead(
    sender_her: str,
    gen_date: datetime,
    *,
    msg_type: str = "POM",
    sender_name: str = "Sender",
) -> MsgHead:
    """A MsgHead from ``sender_her`` to HELFO (HER 79768), MsgId ``m1``."""
    return MsgHead(
        msg_type=Code(msg_type),
        mig_version="v1.2 2006-05-24",
        gen_date=gen_date,
        msg_id="m1",
        sender=Organisation(sender_name, (Ident(sender_her, "HER"),)),
        receiver=Organisation("HELFO", (Ident("79768", "HER"),)),
        content_description="BehandlerKrav",
    )


def enkeltregning(
    takster: tuple[Takst, ...],
    *,
    guid: str,
    regning_nr: str,
    dato_tid: datetime,
    patient: str,
    id_type: str = "FNR",
    kreditering: bool = False,
    betalt_egenandel: bool = True,
    kode_egenandel: Code | None = None,
    diagnoser: tuple[Code, ...] = (),
    prosedyrekoder: tuple[Code, ...] = (),
    relatert_behandler: str | None = None,
    sum_refusjon: Decimal | None = None,
) -> Enkeltregning:
    """An Enkeltregning; ``sum_refusjon`` defaults to the sum of Verdi × Antall."""
    if sum_refusjon is None:
        sum_refusjon = sum((t.verdi * t.antall for t in takster), Decimal("0.00"))
    return Enkeltregning(
        guid=guid,
        betalt_egenandel=betalt_egenandel,
        egenandel_korrigering=False,
        kreditering=kreditering,
        regning_nr=regning_nr,
        dato_tid=dato_tid,
        patient=Ident(patient, id_type),
        behandling=Behandling(
            kode_egenandel=kode_egenandel,
            diagnoser=diagnoser,
            henvisnings_dato=None,
            henvisnings_id=None,
            henvisnings_diagnose=None,
            relatert_behandler=relatert_behandler,
            takster=takster,
            prosedyrekoder=prosedyrekoder,
            tenner=(),
            sum_refusjon=sum_refusjon,
        ),
    )


def behandlerkrav(*bills: Enkeltregning) -> BehandlerKrav:
    """A BehandlerKrav of ``bills`` whose count and sum match them."""
    return BehandlerKrav(
        navn_epj="test",
        versjon_epj="1",
        regninger=bills,
        antall_regninger=len(bills),
        sum_krav_samlet=sum((b.behandling.sum_refusjon for b in bills), Decimal("0")),
    )


def context(
    *bills: Enkeltregning,
    head: MsgHead,
    sender_her: str,
    received_at: datetime,
    history: ClaimHistory | None = None,
    tariffs: TariffBook = EMPTY_BOOK,
    practitioner: str | None = None,
    practitioner_id: str = "",
) -> ClaimContext:
    """A ClaimContext for ``bills`` in one ``behandlerkrav``; without ``history``, an empty
    ``MemoryHistory``."""
    return ClaimContext(
        head=head,
        krav=behandlerkrav(*bills),
        sender_her=sender_her,
        received_at=received_at,
        history=MemoryHistory() if history is None else history,
        tariffs=tariffs,
        practitioner=practitioner,
        practitioner_id=practitioner_id,
    )


def acting_codes(result: Evaluation) -> list[list[str]]:
    """Per bill, the codes of the findings that act (warnings such as 458 only inform)."""
    return [
        [f.code for f in b.findings if f.severity is not Severity.WARNING] for b in result.bills
    ]
