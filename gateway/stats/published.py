"""The tables gateway publishes as open data, by name (``gateway stats export --table NAME``).

As the published KUHR statistics give them: contacts (bills) and the type of contact per
municipality and age group, absolute, as percentage shares and per 1,000 inhabitants (the
per-inhabitant figures appear when a population table for the year is imported); contacts per
patient per municipality and age group; and patients and contacts at the physiotherapists with a
municipal operating agreement (avtalefysioterapeuter) per municipality and age group. The
municipality is the patient's residence; the 90+ exclusion applies to every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["PUBLISHED", "Published"]

_AVTALEFYSIOTERAPI: Mapping[str, tuple[str, ...]] = {
    "praksistype": ("fysioterapeut",),
    "driftsavtale": ("ja",),
}


@dataclass(frozen=True, slots=True)
class Published:
    """One published table: what ``build_table`` is asked for."""

    name: str
    title: str  # Norwegian
    measure: str
    by: tuple[str, ...]
    only: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    share_of: str | None = None


PUBLISHED: dict[str, Published] = {
    p.name: p
    for p in (
        Published(
            "kontakter",
            "Kontakter etter bostedskommune og aldersgruppe",
            "kontakter",
            ("kommune", "aldersgruppe"),
            share_of="aldersgruppe",
        ),
        Published(
            "kontakttype",
            "Kontakter etter kontakttype, bostedskommune og aldersgruppe",
            "kontakter",
            ("kommune", "aldersgruppe", "kontakttype"),
            share_of="kontakttype",
        ),
        Published(
            "fastlege-legevakt",
            "Kontakter hos fastlege og legevakt etter bostedskommune og aldersgruppe",
            "kontakter",
            ("kommune", "aldersgruppe", "praksistype"),
            only={"praksistype": ("fastlege", "legevakt")},
            share_of="praksistype",
        ),
        Published(
            "kontakter-per-pasient",
            "Kontakter per pasient etter bostedskommune og aldersgruppe",
            "kontakter-per-pasient",
            ("kommune", "aldersgruppe"),
        ),
        Published(
            "fysioterapi-pasienter",
            "Pasienter hos avtalefysioterapeut etter bostedskommune og aldersgruppe",
            "pasienter",
            ("kommune", "aldersgruppe"),
            only=_AVTALEFYSIOTERAPI,
            share_of="aldersgruppe",
        ),
        Published(
            "fysioterapi-kontakter",
            "Kontakter hos avtalefysioterapeut etter kontakttype, bostedskommune og aldersgruppe",
            "kontakter",
            ("kommune", "aldersgruppe", "kontakttype"),
            only=_AVTALEFYSIOTERAPI,
            share_of="kontakttype",
        ),
    )
}
