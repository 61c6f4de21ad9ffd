"""Paper claims: kept as aggregates only, paid once by the payout, counted in refusjon tables of
practice dimensions only."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.claims.model import Ident, Organisation
from gateway.payout import ledger
from gateway.payout.decision import Decision, DecisionPaper, build_decision
from gateway.records import PaperClaim
from gateway.store import Store

SCHEMA = Path(__file__).parent.parent / "schemas" / "utbetalingsvedtak-v1.xsd"


def _claim(submission: str = "P-1", refund: int = 125_000, her: str = "8141253") -> PaperClaim:
    return PaperClaim(her, submission, date(2023, 1, 1), date(2023, 1, 31), 12, refund, "lege")


def test_a_paper_claim_holds_no_personal_data_and_is_registered_once(store: Store) -> None:
    assert store.paper.register(_claim(), by="kari") is not None
    assert store.paper.register(_claim(), by="kari") is None  # the same submission again
    [stored] = store.paper.all()
    assert stored.refund_ore == 125_000 and stored.bills == 12
    columns = {
        str(r[0])
        for r in store.engine.rows(
            "SELECT name FROM pragma_table_info('paper_claims')"
            if store.engine.dialect == "sqlite"
            else "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'paper_claims'"
        )
    }
    assert "refund_ore" in columns
    assert not {c for c in columns if "patient" in c or "birth" in c}
    with pytest.raises(ValueError):
        PaperClaim("8141253", "x", date(2023, 2, 1), date(2023, 1, 1), 1, 1)


def test_the_payout_pays_a_paper_claim_exactly_once_and_holds_it_with_its_payee(
    store: Store,
) -> None:
    store.paper.register(_claim("P-1"), by="kari")
    store.paper.register(_claim("P-2", 5_000, her="9000001"), by="kari")
    db = store.engine
    planned = ledger.plan(db)
    assert sorted((x.key, x.amount_ore) for x in planned) == [
        (("paper", 1), 125_000),
        (("paper", 2), 5_000),
    ]

    def hold_second(lines: object) -> set[ledger.LineKey]:
        return {("paper", 2)}

    first = ledger.run(db, "2023-02-01", hold=hold_second)
    assert first.per_receiver == {"8141253": 125_000}
    assert [x.key for x in first.held] == [("paper", 2)]
    assert ledger.paper_lines(db, first.run_id) == [("8141253", 1, 125_000)]
    again = ledger.run(db, "2023-02-01")  # the same key: nothing new
    assert not again.created
    second = ledger.run(db, "2023-02-02")
    assert second.per_receiver == {"9000001": 5_000}
    third = ledger.run(db, "2023-02-03")
    assert third.per_receiver == {}  # both paid, neither paid twice
    assert [r.total_ore for r in ledger.runs(db)] == [125_000, 5_000, 0]


def test_a_decision_names_the_paper_submission_and_validates(tmp_path: Path) -> None:
    payer = Organisation(name="HELFO", idents=(Ident("1", "HER"),))
    receiver = Organisation(name="Legekontoret", idents=(Ident("8141253", "HER"),))
    decision = Decision(
        vedtak_id="k-8141253",
        kjoring="k",
        vedtaksdato=date(2023, 2, 1),
        payer=payer,
        receiver=receiver,
        account=None,
        kid=None,
        bills=(),
        papir=(DecisionPaper("P-1", date(2023, 1, 1), date(2023, 1, 31), 12, Decimal("1250.00")),),
    )
    assert decision.total == Decimal("1250.00")
    xml = build_decision(decision)
    etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(xml)
    assert xml.findtext("{*}Papirinnsending/{*}Utbetalt") == "1250.00"


def test_paper_refunds_count_in_refusjon_by_practice_only(store: Store) -> None:
    from gateway.stats.build import build_table

    store.paper.register(_claim("P-1"), by="kari")
    store.paper.register(_claim("P-2", 5_000, her="9000001"), by="kari")
    db = store.engine
    table = build_table(db, measure="refusjon", by=("praksistype",), period="2023-01")
    assert {c.key: c.value for c in table.cells} == {
        ("lege",): Decimal("1300.00"),
        ("*",): Decimal("1300.00"),
    }
    contacts = build_table(db, measure="kontakter", by=("praksistype",), period="2023-01")
    assert [c.key for c in contacts.cells] == [("*",)]  # paper is no contact
    by_home = build_table(db, measure="refusjon", by=("kommune",), period="2023-01")
    assert [c.key for c in by_home.cells] == [("*",)]  # nor has it a residence
