"""Claim messages as typed values: the MsgHead envelope and the BehandlerKrav payload."""

from gateway.claims.bkm import BKM_NS, parse_behandlerkrav
from gateway.claims.model import (
    BehandlerKrav,
    Behandling,
    Code,
    Enkeltregning,
    HealthcareProfessional,
    Ident,
    MsgHead,
    Organisation,
    Takst,
)
from gateway.claims.msghead import MSGHEAD_NS, MsgHeadDocument, parse_msghead

__all__ = [
    "BKM_NS",
    "MSGHEAD_NS",
    "BehandlerKrav",
    "Behandling",
    "Code",
    "Enkeltregning",
    "HealthcareProfessional",
    "Ident",
    "MsgHead",
    "MsgHeadDocument",
    "Organisation",
    "Takst",
    "parse_behandlerkrav",
    "parse_msghead",
]
