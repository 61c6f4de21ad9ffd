"""Who sent a claim, as the register says: the practice row and the rule family of its bills.

One function for the pipeline and for re-runs (``gateway rules explain|replay``), so a stored
bill's ``practitioner_type`` and the rules that decided it always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from gateway.claims.model import MsgHead
from gateway.claims.practitioner import type_from_professional
from gateway.practices.model import Practice, PracticeRegister

__all__ = ["Sender", "sender_of"]


@dataclass(frozen=True, slots=True)
class Sender:
    """The sender's register row (if any) and the practitioner type its bills are checked as."""

    practice: Practice | None
    practitioner_type: str | None


def sender_of(register: PracticeRegister, head: MsgHead, on: date) -> Sender:
    """The sender of ``head`` as of ``on`` (the day of receipt).

    The register decides when it knows the sender (its row valid on ``on``, else the nearest
    one: a practice that closed still sends its last claims) and its type gives a rule family;
    otherwise the MsgHead's HealthcareProfessional (KITH 9060) gives the practitioner type (a
    sender the register does not know, or one converted from the old configuration whose type
    is ``uavklart``).
    """
    her = head.sender.her_id or ""
    practice = register.best(her, on) if her else None
    family = practice.practitioner_type if practice is not None else None
    return Sender(practice, family or type_from_professional(head))
