"""Case work (saksbehandling): looking at stored bills, overriding decisions, explaining and
replaying the rules.

    gateway claims show BILL [--json]
    gateway claims override BILL --approve|--reject --reason TEXT --by NAME [--amount KR]
    gateway rules list [--at DATE] [--family F] [--json]
    gateway rules explain BILL [--json]
    gateway rules replay --since DATE [--until DATE] [--date-field treatment|received]
                         [--apply --by NAME] [--json]

BILL is a bill id (digits), a Guid, or ``<HER-id>:<RegningNr>`` (the sender's HER id and the
bill's number, e.g. ``8141253:1001``; ``HER:8141253:1001`` also works). Texts for case workers
are Norwegian; ``--json`` keys are English. ``rules list`` reads only the registry (no store is
opened); the other commands open ``Store(config.database)``.

Decisions made here:

- The engine's decision (``bills``, ``findings``) is never edited. A case worker's override and
  a rebehandling are audited rows in ``overrides`` (kind ``override`` / ``rebehandling``, by
  ``rebehandling:<name>``); the latest row is the bill's effective status
  (``store.casework.effective_bill_status``, view ``bill_status_effective``).
- Overrides are refused without a reason and a name, for unknown bills, for credits
  (kreditering) and for bills already credited (the credit, not an override, reverses them),
  and when an approval would leave two effectively approved originals with the same sender and
  Guid. An approved amount must be more than 0 and at most the claimed refund.
- Re-running a stored message (explain, replay) rebuilds the claim from the original bytes and
  evaluates it with today's rules, tariff data in force and practitioner registry, at its
  original receipt time. History is the store
  as it is now, without the message itself and without later messages (so the later of two
  conflicting bills is the one rejected, as on intake). History reads the engine's decisions,
  not overrides: the same view intake has.
- Replay compares each bill with its effective status. It never changes a bill a case worker has
  overridden by hand, nor credits or credited bills; those changes are listed as skipped.
- The national identity number is shown masked (birth date + ``*****``) everywhere, in text and
  JSON: terminal output ends up in tickets.
"""

from gateway.casework.explain import Explanation, explain
from gateway.casework.lookup import CaseworkError, mask_national_id, resolve_bill
from gateway.casework.overrides import override
from gateway.casework.replay import ReplayReport, replay
from gateway.casework.rerun import Environment, HistoryBefore, rebuild_message
from gateway.casework.ruleset import RuleInfo, rules_in_force

__all__ = [
    "CaseworkError",
    "Environment",
    "Explanation",
    "HistoryBefore",
    "ReplayReport",
    "RuleInfo",
    "explain",
    "mask_national_id",
    "override",
    "rebuild_message",
    "replay",
    "resolve_bill",
    "rules_in_force",
]
