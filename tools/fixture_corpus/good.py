"""The good fixtures: claims the pipeline must accept (AppRec status 1)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fixture_corpus.building import Fixture, claim, wrap
from gateway.testing.claims import Practitioner


def good_fixtures() -> list[Fixture]:
    out: list[Fixture] = []

    def add(name: str, description: str, make: Callable[[str], bytes]) -> None:
        out.append(Fixture(f"good/{name}", make(name), description))

    def plain(
        practitioner: Practitioner,
        bills: int,
        start: datetime,
        *,
        compress: bool = False,
        ack: bool = True,
    ) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = claim(name, practitioner, bills, start)
            return wrap(c, compress=compress, ack=ack)

        return make

    add("tannlege-1bills.msg", "one dental bill", plain("tannlege", 1, datetime(2026, 9, 7, 8)))
    add("tannlege-3bills.msg", "three dental bills", plain("tannlege", 3, datetime(2026, 10, 5, 9)))
    add(
        "tannlege-12bills.msg",
        "twelve dental bills",
        plain("tannlege", 12, datetime(2026, 11, 2, 8)),
    )
    add(
        "tannlege-6bills-gzip.msg",
        "payload gzip-compressed (application/gzip)",
        plain("tannlege", 6, datetime(2026, 10, 19, 8), compress=True),
    )
    add("lege-1bills.msg", "one GP bill (LOM)", plain("lege", 1, datetime(2026, 9, 14, 10)))
    add("lege-5bills.msg", "five GP bills", plain("lege", 5, datetime(2026, 10, 12, 8)))
    add(
        "lege-50bills.msg",
        "fifty GP bills over a week",
        plain("lege", 50, datetime(2026, 11, 9, 8)),
    )
    add(
        "lege-2bills-noack.msg",
        "no eb:AckRequested: AppRec only, no acknowledgment",
        plain("lege", 2, datetime(2026, 11, 16, 13), ack=False),
    )

    def bare(name: str) -> bytes:
        return claim(name, "lege", 3, datetime(2026, 10, 26, 9)).payload()

    add("lege-3bills-bare.xml", "bare MsgHead without ebXML: bare AppRec .xml back", bare)

    def pretty(name: str) -> bytes:
        return claim(name, "psykolog", 4, datetime(2026, 11, 10, 9)).payload(pretty=True)

    add("psykolog-4bills-bare-pretty.xml", "bare, pretty-printed MsgHead", pretty)
    add(
        "psykolog-1bills.msg",
        "one psychologist bill",
        plain("psykolog", 1, datetime(2026, 9, 21, 9)),
    )
    add(
        "psykolog-8bills.msg",
        "eight psychologist bills with referrals",
        plain("psykolog", 8, datetime(2026, 10, 1, 9)),
    )
    add(
        "lab-4bills-nlk.msg",
        "laboratory, NLK analysis codes",
        plain("lab", 4, datetime(2026, 9, 28, 7)),
    )
    add(
        "lab-20bills-nlk.msg",
        "laboratory, twenty bills of NLK codes",
        plain("lab", 20, datetime(2026, 11, 3, 7)),
    )

    def clock_drift(name: str) -> bytes:
        # 5 minutes after the tests' moment of receipt (13:00 Oslo): within the 10 minutes'
        # clock tolerance of rule 766.
        c = claim(name, "lege", 1, datetime(2026, 11, 23, 13, 5))
        return wrap(c)

    add(
        "lege-1bills-clock-drift.msg",
        "DatoTid 5 minutes after receipt: within the 10 minutes' clock tolerance",
        clock_drift,
    )
    return out
