"""Who treated: the practitioner's id (HPR) and type, for rules that depend on them.

The type comes from the operator's registry in config (``[practitioners]``: sender HER id ->
type), else from the MsgHead's ``HealthcareProfessional/TypeHealthcareProfessional`` (KITH code
list 9060). Laboratories send as organisations, so they need the registry.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.claims.model import MsgHead

#: KITH 9060 (kategori helsepersonell) codes we map to practitioner types.
_KITH_9060 = {
    "LE": "lege",
    "TL": "tannlege",
    "TP": "tannpleier",
    "PS": "psykolog",
    "FT": "fysioterapeut",
    "KI": "kiropraktor",
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


def practitioner_type(head: MsgHead, registry: Mapping[str, str]) -> str | None:
    """The practitioner type (see ``gateway.tariffs.model.PRACTITIONER_TYPES``), if known."""
    her = head.sender.her_id
    if her and her in registry:
        return registry[her]
    professional = head.sender.professional
    if professional is not None and professional.type is not None:
        return _KITH_9060.get(professional.type.value.upper())
    return None
