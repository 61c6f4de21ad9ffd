"""The intake every inbox hands its messages to: processing in workers, one writer, batches.

How a received message becomes committed, in the parts of this package:

- ``front``: ``PipelineIntake``, the ``transports.Intake`` the inboxes call. It sends the message
  to a worker, then its result to the writer, and returns once the message is committed.
- ``workers``: where the CPU-bound stages run (unwrap, decrypt, verify, parse, validate, rules,
  the signed answer): worker *processes*, so every core works, each message within a time budget
  (a worker over it is killed and replaced, and only its message is parked); or one thread
  (``workers = 0``).
- ``preparing``: a worker's part: the pipeline over a read-only snapshot of the store
  (``snapshot``), its result made into the rows to write (``jobs.Prepared``).
- ``writer``: the one writer of the store. It commits whatever results wait, up to a batch, in
  one transaction, then has the outbox deliver their replies (one directory fsync per batch),
  then reports them committed, so the inbox moves them away. The order per batch is the order
  that made one message crash-safe: commit, replies, spool move.
- ``conflicts``: why concurrency does not change a decision. The rules read history; a message is
  committed only if nothing it read changed since its worker's snapshot (else it is processed
  again, now seeing the other message). Two claims for the same patient in flight at once are
  thereby decided as if one came after the other, never both as "not a duplicate".
- ``settings``: ``[daemon] workers``, ``message_budget_seconds``, ``batch_size``.

Idempotency per ``source_ref`` is as before: a message committed before a crash is recognised
(by the worker's snapshot, and again in the writer's transaction) and only handed on again.
"""

from gateway.intake.front import PipelineIntake, Stats
from gateway.intake.settings import IntakeSettings

__all__ = ["IntakeSettings", "PipelineIntake", "Stats"]
