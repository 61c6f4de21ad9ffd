"""What the engine decided becomes one AppRec ``Error`` per finding, with S, V, DN and OT."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import pytest

from gateway.claims.model import Enkeltregning, Takst
from gateway.receipts.apprec import AppRecError
from gateway.receipts.rule_errors import bill_reference, errors_from_evaluation
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.codes import DEFAULT_CODE_SYSTEM, KITH_8221, shipped_code_list
from gateway.rules.engine import Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.testing.history import context, enkeltregning, msghead

SENDER = "8141253"
RECEIVED = datetime(2024, 3, 10, 12, 0)
CODES = shipped_code_list()


def bill(guid: str, regning_nr: str, dato_tid: datetime, **changes: object) -> Enkeltregning:
    return enkeltregning(
        (Takst("a1", Decimal("100.00"), 1),),
        guid=guid,
        regning_nr=regning_nr,
        dato_tid=dato_tid,
        patient="01017012345",
        **changes,  # type: ignore[arg-type]
    )


def evaluate(
    *bills: Enkeltregning,
    practitioner: str | None = "fysioterapeut",
    rules: tuple[Rule, ...] = RULES,
) -> Evaluation:
    ctx = context(
        *bills,
        head=msghead(SENDER, RECEIVED),
        sender_her=SENDER,
        received_at=RECEIVED,
        practitioner=practitioner,
        practitioner_id=SENDER,
    )
    return RuleEngine(rules).evaluate(ctx)


OK = bill("g1", "101", datetime(2024, 3, 1, 9, 0))
#: Dated in the future and repeating OK's Guid: two refusing findings.
TWICE_WRONG = bill("g1", "102", datetime(2024, 3, 11, 9, 0))
#: Egenandel reported after 14 days: a warning (458), approved.
LATE = bill("g3", "103", datetime(2024, 2, 1, 9, 0))


def test_one_error_per_refusing_finding_of_each_rejected_bill_with_regningnr_as_ot() -> None:
    evaluation = evaluate(OK, TWICE_WRONG, LATE)
    assert [f.code for f in evaluation.bills[2].findings] == ["458"]  # a warning only

    errors = errors_from_evaluation(evaluation)
    assert errors == (
        AppRecError("766", "Enkeltregning er datert frem i tid", DEFAULT_CODE_SYSTEM, "102"),
        AppRecError(
            "9001", "Regningen (Guid) er allerede mottatt og godkjent", DEFAULT_CODE_SYSTEM, "102"
        ),
    )
    assert all(e.complete for e in errors)


def test_no_errors_when_every_bill_is_approved() -> None:
    assert errors_from_evaluation(evaluate(OK, LATE)) == ()


def test_a_manual_bill_gets_no_error_but_a_rejected_one_carries_every_non_warning_finding() -> None:
    held = evaluate(OK, practitioner=None)
    assert held.bills[0].manual and errors_from_evaluation(held) == ()

    rejected = errors_from_evaluation(evaluate(OK, TWICE_WRONG, practitioner=None))
    # 766 and DUPLIKAT refuse; TYPE-001 (manual control) is not a warning, so it is told too.
    assert [(e.code, e.ot) for e in rejected] == [("766", "102"), ("9001", "102"), ("9003", "102")]


def test_message_rejections_use_kith_8221_and_say_what_was_wrong_in_ot() -> None:
    ctx = context(
        OK,
        LATE,
        head=msghead(SENDER, RECEIVED),
        sender_her=SENDER,
        received_at=RECEIVED,
        practitioner="fysioterapeut",
    )
    wrong = dataclasses.replace(ctx.krav, antall_regninger=3, sum_krav_samlet=Decimal("999.00"))
    ctx = dataclasses.replace(ctx, krav=wrong)
    evaluation = RuleEngine(RULES).evaluate(ctx)
    errors = errors_from_evaluation(evaluation, code_system="1.2.3")
    assert [(e.code, e.code_system, e.text) for e in errors] == [
        ("X99", KITH_8221, "Annen feil"),
        ("X99", KITH_8221, "Annen feil"),
    ]
    sums, count = (e.ot or "" for e in errors)
    assert "SumKravSamlet (999.00 kr)" in sums and "200.00 kr" in sums
    assert "AntallRegninger (3)" in count and "(2)" in count
    assert all(e.complete for e in errors)


def test_the_code_system_is_the_configured_one_and_explain_puts_the_findings_text_in_dn() -> None:
    evaluation = evaluate(OK, TWICE_WRONG)
    (future, duplicate) = errors_from_evaluation(
        evaluation, code_system="2.16.578.1.99", explain=True
    )
    assert {future.code_system, duplicate.code_system} == {"2.16.578.1.99"}
    findings = evaluation.bills[1].findings
    assert (future.text, duplicate.text) == (findings[0].text, findings[1].text)
    assert "frem i tid" in future.text and "regningsnummer 101" in duplicate.text


def test_a_bill_without_regningnr_is_named_by_its_position() -> None:
    evaluation = evaluate(OK, bill("g9", " ", datetime(2024, 3, 11, 9, 0)))
    (error,) = errors_from_evaluation(evaluation)
    assert error.ot == "Enkeltregning nr. 2" == bill_reference(evaluation.bills[1])


def test_a_finding_outside_the_code_list_is_never_sent() -> None:
    def always(_bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
        return {}

    unlisted = Rule(
        id="NEW-001",
        version=1,
        code="NY_KODE",
        text="Ny regel.",
        severity=Severity.REJECT_BILL,
        scope=Scope.BILL,
        valid_from=date(2000, 1, 1),
        valid_to=None,
        check=always,
    )
    evaluation = evaluate(OK, rules=(*RULES, unlisted))
    with pytest.raises(LookupError, match="NY_KODE"):
        errors_from_evaluation(evaluation)
    assert CODES.problems((*RULES, unlisted))  # and the start-up check names it
