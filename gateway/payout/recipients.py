"""Who receives a bill's payout, under which name, and to which account: the practice register.

The payee of a bill from sender S (as of the run day, the register's row valid then, else the
nearest one):

- a laboratory bill (practitioner type ``lab`` or ``medisinsk_genetikk``) from a practice the
  register gives an owner (a public laboratory, owned by its regional health authority): the
  owner, under the owner's name and to the owner's account;
- otherwise S itself, named as the register names it.

A payee without an account (or a sender the register does not know) cannot be paid: its
payments are held (``gateway.payout.payees``) until the register gives it one. Decisions go to
the payee's ``mail_address`` and ``cpa_id`` from the register, else ``HER:<id>`` and the
configured CPA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from gateway.clock import local_naive, utc_now
from gateway.practices.live import PracticeSource
from gateway.practices.model import Practice

__all__ = ["LAB_TYPES", "Payee", "Recipients"]

#: Practitioner types whose refunds go to the owner of a public laboratory.
LAB_TYPES = frozenset({"lab", "medisinsk_genetikk"})


@dataclass(frozen=True, slots=True)
class Payee:
    """Who a payment goes to. ``name`` is None for a sender the register does not know."""

    her_id: str
    name: str | None
    enh_id: str | None
    account: str | None
    kid: str | None
    mail_address: str | None
    cpa_id: str | None

    @classmethod
    def of(cls, practice: Practice) -> Payee:
        return cls(
            practice.her_id,
            practice.name,
            practice.enh_id,
            practice.account,
            practice.kid,
            practice.mail_address,
            practice.cpa_id,
        )


def _today() -> date:
    return local_naive(utc_now()).date()


class Recipients:
    """Payees from the register in force (``source.current()`` at each question, so a new
    register import applies to the next run without a restart)."""

    def __init__(self, source: PracticeSource, today: Callable[[], date] = _today) -> None:
        self._source = source
        self._today = today

    def get(self, her_id: str, on: date | None = None) -> Payee | None:
        """The register's entry of ``her_id`` as a payee, if the register knows it."""
        found = self._source.current().best(her_id, on or self._today())
        return None if found is None else Payee.of(found)

    def payee(
        self, sender_her: str, practitioner_type: str | None, on: date | None = None
    ) -> Payee:
        """Who is paid for a bill from ``sender_her`` (see the module docstring)."""
        day = on or self._today()
        register = self._source.current()
        practice = register.best(sender_her, day)
        if practice is None:
            return Payee(sender_her, None, None, None, None, None, None)
        if practitioner_type in LAB_TYPES and practice.owner_her_id is not None:
            owner = register.best(practice.owner_her_id, day)
            if owner is not None:
                return Payee.of(owner)
        return Payee.of(practice)
