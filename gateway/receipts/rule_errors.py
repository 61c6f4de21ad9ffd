"""The AppRec ``Error`` list for what the rule engine decided: one ``Error`` per finding.

- A message refused as a whole (SUMKRAV, ANTALLREGNINGER): one ``Error`` per refusing message
  finding, with its KITH 8221 code (``S`` = 8221, ``DN`` = the 8221 text) and ``OT`` saying
  what was wrong (the rule's Norwegian text, with the amounts or counts it found). The bills'
  own findings are left out: the whole message is refused, and the sender sends it again.
- Otherwise, for each rejected bill, one ``Error`` per finding that is not a warning, in the
  order the rules ran: ``S`` = the code system of gateway's code list, ``V`` = the finding's
  number there, ``DN`` = the code's Norwegian text, ``OT`` = the bill's RegningNr (KITH's sample
  ``example-ok-feil-i-delmelding.xml``). Approved bills get none: AppRec allows ``Error`` only
  with status 2 or 3, and a bill approved for manual control is not refused.

A finding whose code is not in the code list raises ``LookupError``: a code outside the list is
never sent. ``CodeList.check(RULES)`` at start makes that impossible at run time.
"""

from __future__ import annotations

from gateway.receipts.apprec import AppRecError
from gateway.rules.base import Finding, Severity
from gateway.rules.codes import DEFAULT_CODE_SYSTEM, KITH_8221, CodeList, shipped_code_list
from gateway.rules.engine import BillDecision, Evaluation


def errors_from_evaluation(
    evaluation: Evaluation,
    *,
    codes: CodeList | None = None,
    code_system: str = DEFAULT_CODE_SYSTEM,
    explain: bool = False,
) -> tuple[AppRecError, ...]:
    """The ``Error`` elements of the AppRec that answers ``evaluation`` (empty: status 1).

    ``code_system`` is the configured identifier of the code list (``Error/@S`` of per-bill
    errors). With ``explain``, a per-bill ``DN`` is the finding's own text (naming the takst,
    amounts or earlier bill) instead of the code's text from the list.
    """
    code_list = codes or shipped_code_list()
    if evaluation.message_rejected:
        return tuple(
            _message_error(finding, code_list)
            for finding in evaluation.message_findings
            if finding.severity is Severity.REJECT_MESSAGE
        )
    return tuple(
        _bill_error(finding, bill, code_list, code_system, explain)
        for bill in evaluation.rejected
        for finding in bill.findings
        if finding.severity is not Severity.WARNING
    )


def bill_reference(bill: BillDecision) -> str:
    """``OT`` of a per-bill error: the bill's RegningNr, else its position in the message."""
    return bill.bill.regning_nr.strip() or f"Enkeltregning nr. {bill.index + 1}"


def _bill_error(
    finding: Finding, bill: BillDecision, codes: CodeList, code_system: str, explain: bool
) -> AppRecError:
    merknad = codes.merknad(finding.code)
    text = finding.text if explain and finding.text.strip() else merknad.text
    return AppRecError(
        code=merknad.value, text=text, code_system=code_system, ot=bill_reference(bill)
    )


def _message_error(finding: Finding, codes: CodeList) -> AppRecError:
    entry = codes.message_code(finding.code)
    what = finding.text.strip() or f"{entry.mnemonic}: {entry.guidance}"
    return AppRecError(code=entry.code, text=entry.text, code_system=KITH_8221, ot=what)
