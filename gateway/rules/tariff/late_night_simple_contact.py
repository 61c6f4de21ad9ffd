"""Helfo's checkpoint: takst 1bd registered at 23:59 suggests the test result's arrival time
was used instead of the real contact, so the bill goes to manual control."""

from __future__ import annotations

from datetime import date, time

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity

_SUSPECT = time(23, 59)


def _registered_at_midnight(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.dato_tid.time().replace(second=0, microsecond=0) != _SUSPECT:
        return None
    return {"dato": bill.dato_tid.date().isoformat()}


SIMPLE_CONTACT_AT_MIDNIGHT = Rule(
    id="TAR-012",
    version=1,
    code="1BD_2359",
    text=(
        "Takst 1bd er registrert {dato} kl. 23:59. Regningen kontrolleres manuelt: tidspunktet "
        "skal være når pasientkontakten fant sted, ikke når prøvesvaret kom."
    ),
    guidance="Registrer 1bd med tidspunktet for selve kontakten med pasienten.",
    severity=Severity.MANUAL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_registered_at_midnight,
    practitioners=frozenset({"lege"}),
    codes=frozenset({"1bd"}),
    basis="TIME-009 (S): Helfo checkpoint in automatic control of first claims from lege",
)
