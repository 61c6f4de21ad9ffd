"""Laboratory rules on NLK codes: validity, rates by refusjonskategori, stars, genetics, HPV.

All apply to practitioner types ``lab`` and ``medisinsk_genetikk`` from 2018-01-01 and stay
silent when the tariff book has no NLK register (see ``common``). None names ``codes``: every
rule concerns every NLK code of a bill (the list codes are exceptions, not triggers), so the
engine indexes them by practitioner type only.
"""

from gateway.rules.base import Rule
from gateway.rules.lab.amount import NLK_BELOP
from gateway.rules.lab.duplicate import NLK_DUPLIKAT
from gateway.rules.lab.genetics_combination import GENETIKK_KOMBINASJON
from gateway.rules.lab.genetics_field import GENETIKK_FAGOMRADE
from gateway.rules.lab.genetics_provider import GENETIKK_REKVIRENT
from gateway.rules.lab.hpv import HPV_SCREENING
from gateway.rules.lab.inpatient import INNLAGT
from gateway.rules.lab.repetition import NLK_REPETISJON
from gateway.rules.lab.starred import STJERNEKODE
from gateway.rules.lab.valid_code import UGYLDIG_NLK

RULES: tuple[Rule, ...] = (
    UGYLDIG_NLK,
    STJERNEKODE,
    INNLAGT,
    NLK_BELOP,
    NLK_DUPLIKAT,
    NLK_REPETISJON,
    GENETIKK_REKVIRENT,
    GENETIKK_FAGOMRADE,
    GENETIKK_KOMBINASJON,
    HPV_SCREENING,
)
